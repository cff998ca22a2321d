use std::collections::VecDeque;
use std::time::Duration;

use microscoped_driver_api::ErrorKind;

use super::*;
use crate::emulate::{Emulated, Emulator, Fault, Framing, Reply, Responder};

/// Answers with a queue of scripted replies, then echoes.
struct Scripted(VecDeque<Reply>);

impl Responder for Scripted {
    const FRAMING: Framing = Framing {
        command: "\r",
        reply: "\r\n",
    };

    fn answer(&mut self, command: &str) -> Reply {
        self.0
            .pop_front()
            .unwrap_or_else(|| Reply::Line(format!("echo {command}")))
    }
}

fn settings(path: &std::path::Path) -> PortSettings {
    PortSettings {
        path: path.to_owned(),
        baud: 115_200,
        timeout_ms: 200,
        ..Default::default()
    }
}

fn emulator(replies: Vec<Reply>) -> Emulated {
    Emulator::new(Scripted(replies.into())).start().unwrap()
}

#[test]
fn query_and_send_round_trip() {
    let emu = emulator(vec![]);
    let port = Port::open(settings(emu.path())).unwrap();
    assert_eq!(port.query("WHERE X").unwrap(), "echo WHERE X");
    port.send("ignored").unwrap();
    // The echo of the sent command arrives late and is discarded before the next query.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(port.query("second").unwrap(), "echo second");
}

#[test]
fn a_silent_device_times_out_and_a_late_reply_is_not_taken_for_the_next() {
    let emu = emulator(vec![Reply::Silent, Reply::Raw(b"half a li".to_vec())]);
    let port = Port::open(settings(emu.path())).unwrap();
    let e = port.query("one").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    let e = port.query("two").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.message.contains("half a li"), "{e}");
    assert_eq!(port.query("three").unwrap(), "echo three");
}

#[test]
fn devices_share_one_port_from_many_threads() {
    let emu = emulator(vec![]);
    let port = Port::open(settings(emu.path())).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let port = port.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let cmd = format!("t{t} n{i}");
                    assert_eq!(port.query(&cmd).unwrap(), format!("echo {cmd}"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_missing_port_is_a_clear_error() {
    let e = Port::open(settings(std::path::Path::new("/dev/ttyNOPE9")))
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::Disconnected);
    assert!(
        e.message.contains("/dev/ttyNOPE9") && e.message.contains("does not exist"),
        "{e}"
    );
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let emu = emulator(vec![]);
    let _first = Port::open(settings(emu.path())).unwrap();
    let e = Port::open(settings(emu.path())).err().unwrap();
    assert_eq!(e.kind, ErrorKind::Busy, "{e}");
    assert!(e.message.contains("in use"), "{e}");
}

#[test]
fn an_unplugged_port_is_reopened_when_it_comes_back() {
    let dir = std::env::temp_dir().join(format!("serial-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("ttyUSB-stable");
    let _ = std::fs::remove_file(&link);
    let first = emulator(vec![]);
    std::os::unix::fs::symlink(first.path(), &link).unwrap();
    let port = Port::open(settings(&link)).unwrap();
    assert_eq!(port.query("a").unwrap(), "echo a");

    first.vanish();
    let e = port.query("b").unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::Disconnected | ErrorKind::Timeout),
        "{e}"
    );
    // Still gone: reopening fails, clearly.
    std::fs::remove_file(&link).unwrap();
    let e = port.query("c").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Disconnected, "{e}");

    // Plugged back in (a new pseudo-terminal behind the same stable path).
    let second = emulator(vec![]);
    std::os::unix::fs::symlink(second.path(), &link).unwrap();
    assert_eq!(port.query("d").unwrap(), "echo d");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Numbers the commands it carries out, so a lost command shows in the next answer.
struct Counter(u32);

impl Responder for Counter {
    const FRAMING: Framing = Framing {
        command: "\r",
        reply: "\r\n",
    };

    fn answer(&mut self, command: &str) -> Reply {
        self.0 += 1;
        Reply::Lines(vec![format!("{command} {}", self.0), "OK".into()])
    }
}

#[test]
fn faults_apply_in_order_and_the_log_keeps_every_command() {
    let emu = Emulator::new(Counter(0));
    for fault in [Fault::Garbage, Fault::Truncated, Fault::Cut, Fault::Silent] {
        emu.inject(fault);
    }
    assert_eq!(emu.respond("a"), Reply::Raw(b"\x15#\xfe%?@~\r\n".to_vec()));
    assert_eq!(emu.respond("bb"), Reply::Raw(b"bb\r\n".to_vec()));
    assert_eq!(emu.respond("cc"), Reply::Raw(b"cc".to_vec()));
    // The silenced command was lost: the device carried out three, not four.
    assert_eq!(emu.respond("d"), Reply::Silent);
    assert_eq!(
        emu.respond("e"),
        Reply::Lines(vec!["e 4".into(), "OK".into()])
    );
    assert_eq!(emu.device().0, 4);
    assert_eq!(emu.commands(), ["a", "bb", "cc", "d", "e"]);
    emu.clear_commands();
    assert!(emu.commands().is_empty());
}

#[test]
fn an_emulator_frames_its_replies_and_says_how() {
    let emu = Emulator::new(Counter(0));
    let running = emu.start().unwrap();
    assert_eq!(running.framing(), Counter::FRAMING);
    let port = Port::open(settings(running.path())).unwrap();
    // The first line is the reply; the "OK" after it is stale input before the next command.
    assert_eq!(port.query("x").unwrap(), "x 1");
    assert_eq!(port.query("y").unwrap(), "y 2");
    assert_eq!(emu.commands(), ["x", "y"]);
}

#[test]
fn settings_are_checked() {
    let mut s = PortSettings::default();
    assert_eq!(s.validate().unwrap_err().key, "path");
    s.path = "/dev/ttyS0".into();
    assert!(s.validate().is_ok());
    s.data_bits = 9;
    assert_eq!(s.validate().unwrap_err().key, "data_bits");
}
