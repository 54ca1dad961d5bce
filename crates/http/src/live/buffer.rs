//! What running builds printed so far, kept so that a live page opened
//! mid-build starts from the beginning (or from a marked cut), and which
//! builds ended here lately, so that their live page can move on to the
//! result. Plain data: the hub around it adds the lock and the channel.

use buildmesh_protocol::{CommitId, ProjectId, Timestamp};
use std::collections::{BTreeMap, VecDeque};

/// A cell, as live output names it: project, commit, platform.
pub type LiveCell = (ProjectId, CommitId, String);

/// Most bytes of output (step names included) kept per running build:
/// past this the oldest go, and a late comer is told how many.
pub const LIVE_TAIL_BYTES: usize = 256 * 1024;

/// Ended builds remembered, newest kept: enough for their pages to find
/// the result the node writes a moment after.
pub const ENDED_REMEMBERED: usize = 64;

/// How far past the cut a line break is looked for, so that kept output
/// starts with a whole line when one starts near the cut.
const LINE_SEARCH_BYTES: usize = 1024;

/// Some consecutive output of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The step's name.
    pub step: String,
    /// What it printed.
    pub text: String,
}

/// What a build printed so far: the newest output within a byte budget,
/// and how many bytes were dropped before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Bytes of output dropped to stay within the budget (0: none).
    pub cut_bytes: u64,
    /// The rest, oldest first; consecutive output of a step is one chunk.
    pub chunks: Vec<Chunk>,
}

/// Output of one running build, bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tail {
    chunks: VecDeque<Chunk>,
    /// Bytes held: texts and step names.
    bytes: usize,
    cut_bytes: u64,
}

impl Tail {
    fn new() -> Tail {
        Tail {
            chunks: VecDeque::new(),
            bytes: 0,
            cut_bytes: 0,
        }
    }

    fn push(&mut self, step: &str, text: &str, budget: usize) {
        match self.chunks.back_mut() {
            Some(last) if last.step == step => last.text.push_str(text),
            _ => {
                self.chunks.push_back(Chunk {
                    step: step.to_owned(),
                    text: text.to_owned(),
                });
                self.bytes += step.len();
            }
        }
        self.bytes += text.len();
        self.shrink(budget);
    }

    /// Drops the oldest output until what is held fits `budget`.
    fn shrink(&mut self, budget: usize) {
        while self.bytes > budget {
            let excess = self.bytes - budget;
            let Some(first) = self.chunks.front_mut() else {
                self.bytes = 0;
                return;
            };
            let cut = cut_point(&first.text, excess);
            if cut < first.text.len() {
                first.text.drain(..cut);
                self.bytes -= cut;
                self.cut_bytes += cut as u64;
            } else {
                let gone = first.text.len();
                self.bytes -= gone + first.step.len();
                self.cut_bytes += gone as u64;
                self.chunks.pop_front();
            }
        }
    }

    fn backlog(&self) -> Backlog {
        Backlog {
            cut_bytes: self.cut_bytes,
            chunks: self.chunks.iter().cloned().collect(),
        }
    }
}

/// Where to cut `text` to drop at least `excess` bytes: on a character
/// boundary, and after the next line break if one comes soon.
fn cut_point(text: &str, excess: usize) -> usize {
    let mut cut = excess.min(text.len());
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    let ahead = &text.as_bytes()[cut..text.len().min(cut + LINE_SEARCH_BYTES)];
    match ahead.iter().position(|&b| b == b'\n') {
        Some(at) => cut + at + 1,
        None => cut,
    }
}

/// Where a cell's build stands on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveState {
    /// It runs here now.
    Running,
    /// It ended here lately.
    Ended {
        /// When it started (its result, if written, is newer).
        started: Timestamp,
        /// When it ended.
        ended: Timestamp,
        /// Whether it was cancelled: it writes no result.
        cancelled: bool,
    },
    /// Nothing known: it never ran here, or ended long ago.
    Unknown,
}

/// Running builds' output so far, and builds that ended lately.
#[derive(Debug, Clone)]
pub struct LiveBuffers {
    running: BTreeMap<LiveCell, (Timestamp, Tail)>,
    ended: VecDeque<(LiveCell, LiveState)>,
    budget: usize,
}

impl Default for LiveBuffers {
    fn default() -> Self {
        LiveBuffers::new(LIVE_TAIL_BYTES)
    }
}

impl LiveBuffers {
    /// Keeping at most `budget` bytes of each running build's output.
    pub fn new(budget: usize) -> LiveBuffers {
        LiveBuffers {
            running: BTreeMap::new(),
            ended: VecDeque::new(),
            budget,
        }
    }

    /// A build of `cell` started at `now`: its output is kept from here
    /// (a build of it that ran before is forgotten).
    pub fn started(&mut self, cell: LiveCell, now: Timestamp) {
        self.ended.retain(|(c, _)| *c != cell);
        self.running.insert(cell, (now, Tail::new()));
    }

    /// `cell`'s running build printed `text` in `step`; whether it is
    /// running (output of a build not started here is not kept).
    pub fn output(&mut self, cell: &LiveCell, step: &str, text: &str) -> bool {
        match self.running.get_mut(cell) {
            Some((_, tail)) => {
                tail.push(step, text, self.budget);
                true
            }
            None => false,
        }
    }

    /// `cell`'s build ended at `now`: its output is dropped (its logs are
    /// blobs now) and its end remembered.
    pub fn ended(&mut self, cell: &LiveCell, now: Timestamp, cancelled: bool) {
        let Some((started, _)) = self.running.remove(cell) else {
            return;
        };
        self.ended.retain(|(c, _)| c != cell);
        if self.ended.len() >= ENDED_REMEMBERED {
            self.ended.pop_front();
        }
        let state = LiveState::Ended {
            started,
            ended: now,
            cancelled,
        };
        self.ended.push_back((cell.clone(), state));
    }

    /// Where `cell`'s build stands here.
    pub fn state(&self, cell: &LiveCell) -> LiveState {
        if self.running.contains_key(cell) {
            return LiveState::Running;
        }
        self.ended
            .iter()
            .rev()
            .find(|(c, _)| c == cell)
            .map_or(LiveState::Unknown, |(_, state)| *state)
    }

    /// What `cell`'s running build printed so far (`None`: not running).
    pub fn backlog(&self, cell: &LiveCell) -> Option<Backlog> {
        self.running.get(cell).map(|(_, tail)| tail.backlog())
    }

    /// Bytes held for running builds, for tests and metrics.
    pub fn bytes(&self) -> usize {
        self.running.values().map(|(_, tail)| tail.bytes).sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cell(n: u8) -> LiveCell {
        (
            ProjectId([n; 32]),
            CommitId::from_bytes(&[n; 20]).unwrap(),
            "linux".to_owned(),
        )
    }

    fn text(backlog: &Backlog) -> String {
        backlog.chunks.iter().map(|c| c.text.as_str()).collect()
    }

    #[test]
    fn a_late_comer_gets_everything_printed_so_far_by_step() {
        let mut buffers = LiveBuffers::default();
        buffers.started(cell(1), Timestamp(10));
        assert!(buffers.output(&cell(1), "build", "early\n"));
        assert!(buffers.output(&cell(1), "build", "still\n"));
        assert!(buffers.output(&cell(1), "test", "late\n"));
        assert!(!buffers.output(&cell(2), "build", "not started here\n"));
        let backlog = buffers.backlog(&cell(1)).unwrap();
        assert_eq!(backlog.cut_bytes, 0);
        assert_eq!(
            backlog.chunks,
            [
                Chunk {
                    step: "build".into(),
                    text: "early\nstill\n".into()
                },
                Chunk {
                    step: "test".into(),
                    text: "late\n".into()
                },
            ]
        );
        assert_eq!(buffers.backlog(&cell(2)), None);
        assert_eq!(buffers.state(&cell(1)), LiveState::Running);
        assert_eq!(buffers.state(&cell(2)), LiveState::Unknown);
    }

    #[test]
    fn the_oldest_output_goes_past_the_budget_and_is_counted() {
        let mut buffers = LiveBuffers::new(100);
        buffers.started(cell(1), Timestamp(0));
        for i in 0..50 {
            buffers.output(&cell(1), "test", &format!("line {i:02}\n"));
        }
        let backlog = buffers.backlog(&cell(1)).unwrap();
        let kept = text(&backlog);
        // 50 lines of 8 bytes; the step name counts too.
        assert!(kept.len() + "test".len() <= 100, "{kept:?}");
        assert!(kept.ends_with("line 49\n"), "{kept:?}");
        assert!(
            kept.starts_with("line "),
            "starts with a whole line: {kept:?}"
        );
        assert_eq!(backlog.cut_bytes as usize + kept.len(), 50 * 8);
        assert!(buffers.bytes() <= 100);
    }

    #[test]
    fn the_oldest_step_goes_first() {
        let mut buffers = LiveBuffers::new(64);
        buffers.started(cell(1), Timestamp(0));
        buffers.output(&cell(1), "build", &"b".repeat(40));
        buffers.output(&cell(1), "test", &"t".repeat(30));
        let backlog = buffers.backlog(&cell(1)).unwrap();
        assert_eq!(backlog.chunks[0].text, "b".repeat(25), "{backlog:?}");
        assert_eq!(backlog.chunks[1].text, "t".repeat(30));
        assert_eq!(backlog.cut_bytes, 15);
        // One chunk larger than the budget keeps its newest bytes, and
        // the older step is gone.
        buffers.output(&cell(1), "test", &"x".repeat(500));
        let backlog = buffers.backlog(&cell(1)).unwrap();
        assert_eq!(backlog.chunks.len(), 1, "{backlog:?}");
        assert_eq!(text(&backlog), "x".repeat(60));
        assert_eq!(backlog.cut_bytes, 40 + 30 + 440);
        assert_eq!(buffers.bytes(), 64);
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        let mut buffers = LiveBuffers::new(10);
        buffers.started(cell(1), Timestamp(0));
        buffers.output(&cell(1), "s", "ééééééééééé");
        let kept = text(&buffers.backlog(&cell(1)).unwrap());
        assert!(kept.chars().all(|c| c == 'é'), "{kept:?}");
        assert!(!kept.is_empty() && kept.len() < 10, "{kept:?}");
        assert_eq!(cut_point("aé", 2), 3);
    }

    #[test]
    fn an_ended_build_is_remembered_then_forgotten() {
        let mut buffers = LiveBuffers::default();
        buffers.started(cell(1), Timestamp(5));
        buffers.output(&cell(1), "build", "x");
        buffers.ended(&cell(1), Timestamp(9), false);
        assert_eq!(
            buffers.state(&cell(1)),
            LiveState::Ended {
                started: Timestamp(5),
                ended: Timestamp(9),
                cancelled: false
            }
        );
        assert_eq!(buffers.backlog(&cell(1)), None);
        assert_eq!(buffers.bytes(), 0);
        // Started again: running, from an empty backlog.
        buffers.started(cell(1), Timestamp(20));
        assert_eq!(buffers.state(&cell(1)), LiveState::Running);
        assert_eq!(buffers.backlog(&cell(1)), Some(Backlog::default()));
        // An end of a build that is not running changes nothing.
        buffers.ended(&cell(2), Timestamp(21), true);
        assert_eq!(buffers.state(&cell(2)), LiveState::Unknown);
        // Only the newest ends are remembered.
        for n in 0..=ENDED_REMEMBERED as u8 {
            buffers.started(cell(n + 10), Timestamp(30));
            buffers.ended(&cell(n + 10), Timestamp(31), true);
        }
        assert_eq!(buffers.state(&cell(10)), LiveState::Unknown);
        assert!(matches!(
            buffers.state(&cell(11)),
            LiveState::Ended {
                cancelled: true,
                ..
            }
        ));
    }
}
