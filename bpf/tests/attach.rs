//! Attach/detach on a veth pair inside a network namespace the test creates (root, as in CI):
//! native attach works, a second attach without force is refused, force replaces, drop
//! detaches, and the device-bound object loads for the veth.

use std::process::Command;

use bpf::{AttachMode, BpfError, ProgramOptions, XdpProgram};

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("run ip");
    assert!(st.success(), "ip {args:?} failed");
}

/// A namespace with a veth pair, removed on drop (even on panic).
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("acbpf-{tag}-{}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ip(&[
            "-n", &ns.name, "link", "add", "va", "type", "veth", "peer", "name", "vb",
        ]);
        for l in ["va", "vb"] {
            let st = Command::new("ip")
                .args(["netns", "exec", &ns.name, "sysctl", "-q", "-w"])
                .arg(format!("net.ipv6.conf.{l}.disable_ipv6=1"))
                .status()
                .expect("sysctl");
            assert!(st.success());
            ip(&["-n", &ns.name, "link", "set", l, "up"]);
        }
        ns
    }

    fn ifindex(&self, link: &str) -> u32 {
        let out = Command::new("ip")
            .args(["-n", &self.name, "-o", "link", "show", "dev", link])
            .output()
            .expect("ip link show");
        let s = String::from_utf8_lossy(&out.stdout);
        s.split(':')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .expect("ifindex")
    }

    /// Runs `f` on a thread that has entered the namespace.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open netns");
            enter(&file);
            f()
        })
        .join()
        .expect("namespace thread")
    }
}

#[allow(unsafe_code)]
fn enter(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: setns on a valid namespace fd only changes this thread's network namespace,
    // which is a thread the test spawned for that purpose.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn xdp_prog_attached(ns: &Netns, link: &str) -> bool {
    let out = Command::new("ip")
        .args(["-n", &ns.name, "-d", "link", "show", "dev", link])
        .output()
        .expect("ip link show");
    String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
}

#[test]
fn native_attach_refuses_second_and_detaches_on_drop() {
    let ns = Netns::new("att");
    let ifindex = ns.ifindex("va");
    let (first_mode, refused, forced_mode) = ns.run(move || {
        let p = XdpProgram::load(&ProgramOptions::default()).expect("load");
        let a = p
            .attach(ifindex, AttachMode::Native, false)
            .expect("native attach");
        let q = XdpProgram::load(&ProgramOptions::default()).expect("load second");
        let refused = matches!(
            q.attach(ifindex, AttachMode::Auto, false),
            Err(BpfError::AlreadyAttached { .. })
        );
        let mode = a.mode;
        let b = q
            .attach(ifindex, AttachMode::Auto, true)
            .expect("forced attach");
        drop(a);
        let forced = b.mode;
        drop(b);
        drop(p);
        (mode, refused, forced)
    });
    assert_eq!(first_mode, AttachMode::Native);
    assert!(refused, "second attach without force must be refused");
    assert_eq!(forced_mode, AttachMode::Native);
    assert!(
        !xdp_prog_attached(&ns, "va"),
        "dropping the attachment detaches"
    );
}

#[test]
fn attachment_is_visible_while_held() {
    let ns = Netns::new("vis");
    let ifindex = ns.ifindex("vb");
    let name = ns.name.clone();
    let seen = ns.run(move || {
        let p = XdpProgram::load(&ProgramOptions::default()).expect("load");
        let _a = p
            .attach(ifindex, AttachMode::Generic, false)
            .expect("generic attach");
        let out = Command::new("ip")
            .args(["-n", &name, "-d", "link", "show", "dev", "vb"])
            .output()
            .expect("ip");
        String::from_utf8_lossy(&out.stdout).contains("xdp")
    });
    assert!(seen);
    assert!(!xdp_prog_attached(&ns, "vb"));
}

#[test]
fn device_bound_object_loads_and_attaches_on_veth() {
    let ns = Netns::new("dev");
    let ifindex = ns.ifindex("va");
    let (clock, mode) = ns.run(move || {
        let p = XdpProgram::load(&ProgramOptions {
            device_bound_ifindex: Some(ifindex),
            ..ProgramOptions::default()
        })
        .expect("device-bound program loads through the verifier");
        let a = p
            .attach(ifindex, AttachMode::Native, false)
            .expect("attach");
        (p.clock_source(), a.mode)
    });
    assert_eq!(clock, bpf::ClockSource::DeviceRxOrKernelTai);
    assert_eq!(mode, AttachMode::Native);
}

#[test]
fn register_socket_rejects_a_non_xdp_fd() {
    let p = XdpProgram::load(&ProgramOptions::default()).expect("load");
    let f = std::fs::File::open("/dev/null").expect("open");
    use std::os::fd::AsRawFd;
    assert!(p.register_socket(0, f.as_raw_fd()).is_err());
}

#[test]
fn force_replaces_only_the_program_of_its_own_namespace() {
    // Interfaces of two namespaces share ifindex numbers; the kernel's link list spans all
    // namespaces, so a forced attach must not detach the other namespace's program.
    let a = Netns::new("fa");
    let b = Netns::new("fb");
    let ifindex = a.ifindex("va");
    assert_eq!(ifindex, b.ifindex("va"), "fresh namespaces number alike");
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let path = format!("/run/netns/{}", a.name);
    let holder = std::thread::spawn(move || {
        enter(&std::fs::File::open(&path).expect("open netns"));
        let p = XdpProgram::load(&ProgramOptions::default()).expect("load");
        let held = p
            .attach(ifindex, AttachMode::Native, false)
            .expect("attach in a");
        ready_tx.send(()).unwrap();
        let _ = rx.recv();
        drop(held);
    });
    ready_rx.recv().unwrap();
    let forced = b.run(move || {
        let q = XdpProgram::load(&ProgramOptions::default()).expect("load");
        let first = q
            .attach(ifindex, AttachMode::Native, false)
            .expect("attach in b");
        let r = XdpProgram::load(&ProgramOptions::default()).expect("load");
        let forced = r.attach(ifindex, AttachMode::Native, true).is_ok();
        drop(first);
        forced
    });
    let still = xdp_prog_attached(&a, "va");
    tx.send(()).unwrap();
    holder.join().unwrap();
    assert!(forced, "forced attach in b");
    assert!(
        still,
        "the program in namespace a was detached by b's forced attach"
    );
}
