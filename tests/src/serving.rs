//! A server process a test starts (`groundglass serve`, in the test's private network
//! namespace): started, awaited until it says it listens, killed when dropped.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Serving(Child);

impl Serving {
    /// Spawns `command` and waits (up to 60 s) for a line of its stderr that starts with
    /// `serving`; its stderr is drained from then on, so the server never blocks on a full pipe.
    pub fn start(mut command: Command) -> Serving {
        let mut child = command
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let serving = Serving(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with("serving") => return serving,
                Ok(_) => {}
                Err(_) => panic!("the server did not start within 60 s"),
            }
        }
    }
}

impl Serving {
    /// Sends the server a signal by name (`STOP` to freeze it, `KILL` to kill it mid-request).
    pub fn signal(&self, name: &str) {
        let pid = self.0.id();
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} {pid}");
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
