//! Console lines as loop events: a worker reads stdin, and each burst of
//! input wakes the loop with one completion; the loop prints every line it
//! receives and exits at end of input.
//!
//! ```text
//! printf 'look\r\nsay hi\n' | cargo run -p uniloop --example console
//! cargo run -p uniloop --example console            # type lines, end with Ctrl-D
//! cargo run -p uniloop --example console -- --stop-after-first-line
//! ```
//!
//! With `--stop-after-first-line` it stops the console after the first
//! line, while the reader is waiting for more input, and reports whether
//! the reader finished.

use std::io;
use std::time::Duration;

use uniloop::{Console, ConsoleEvent, Event, Events, Runtime};

const CONSOLE: u64 = 1;
/// Only a guard: stopping is prompt.
const STOP_GUARD: Duration = Duration::from_secs(20);

fn main() -> io::Result<()> {
    let stop_after_first = std::env::args().any(|a| a == "--stop-after-first-line");
    let mut rt = Runtime::new()?;
    let mut console = Console::spawn(&rt.poster(), CONSOLE)?;
    println!("console: {:?}", console.kind());

    let mut events = Events::with_capacity(64);
    loop {
        rt.wait(&mut events, None)?;
        for event in &events {
            let Event::Completion { key: CONSOLE, .. } = *event else {
                continue;
            };
            // One completion per burst: take everything that is there.
            while let Some(ev) = console.try_recv() {
                match ev {
                    ConsoleEvent::Line(line) => {
                        println!("line {line:?}");
                        if stop_after_first {
                            println!("stopped {}", console.stop(STOP_GUARD));
                            return Ok(());
                        }
                    }
                    ConsoleEvent::Eof => {
                        println!("eof");
                        let stopped = console.stop(STOP_GUARD);
                        let after = console.try_recv();
                        println!("stopped {stopped}, after eof: {after:?}");
                        return Ok(());
                    }
                }
            }
        }
    }
}
