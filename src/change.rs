//! The change decision: when to read the watched paths again, whether what they hold now is a
//! real change, whether it was refused before, when to act (`--debounce`, `--jitter`), what to
//! validate, and which action follows (or would, with `--dry-run`). Like the supervisor it does
//! no I/O and has no clock of its own: every input takes the current time and returns `Step`s
//! for the event loop to carry out, so every path is unit-tested with made-up instants.

use crate::config::OnChange;
use crate::content::{Changed, Snapshot};
use crate::time::earliest;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How many quiet periods (`--debounce`) a kubelet update waits at most for the links of its
/// new keys before it is acted on as it is.
const LINKS_WAIT_PERIODS: u32 = 10;

/// How `--validate` is run on new content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    None,
    /// Once, whatever changed (the command has no `{}`).
    Once,
    /// Once per changed file that exists (`{}` is the file); every run must succeed.
    PerFile,
}

/// The parts of `Config` the decision is made with.
#[derive(Debug, Clone)]
pub struct ChangePolicy {
    pub debounce: Duration,
    pub jitter: Duration,
    pub validation: Validation,
    pub on_change: OnChange,
    pub dry_run: bool,
}

/// What the event loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Read every watched path (again, dropping a read in progress); report with `scanned`.
    Scan,
    /// Run the validator once per path (an empty list: once, with no path); report with
    /// `validated`.
    Validate(Vec<PathBuf>),
    /// Carry out `action` for these changes (log it only with `dry_run`).
    Act {
        action: OnChange,
        changes: Vec<Changed>,
        dry_run: bool,
    },
    /// Nothing to do; say why (debug level).
    Unchanged,
    StillRefused,
    /// Acting after this random delay (`--jitter`).
    Jitter(Duration),
    /// The validator refused the content: the app is left untouched.
    Refused {
        changes: Vec<Changed>,
        why: String,
    },
    /// These files became unreadable (their last content stands).
    Unreadable(Vec<PathBuf>),
    /// The kubelet's update is not complete: these keys have no user-visible link yet (it makes
    /// them just after the `..data` swap). Read again at the next event.
    LinksPending(Vec<PathBuf>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Nothing read yet: the first scan is the reference.
    Starting,
    Idle,
    Scanning,
    /// The validator runs on `snapshot`, taken when the reference was at `generation`.
    Validating {
        snapshot: Snapshot,
        changes: Vec<Changed>,
        generation: u64,
    },
}

pub struct ChangeTracker {
    policy: ChangePolicy,
    phase: Phase,
    /// The content last acted on (or started with): the reference for "changed".
    baseline: Snapshot,
    /// Bumped whenever `baseline` moves, so a validation of older content is not acted on.
    generation: u64,
    /// What the running app started with: a restart's log line names the changes since.
    started_with: Snapshot,
    /// What the app before it started with: it serves on if the new one fails to take over.
    serving: Snapshot,
    /// Content the validator refused: not retried until the content changes again.
    refused: Option<Snapshot>,
    /// Read again when this passes (the debounce after the last relevant event).
    settle_at: Option<Instant>,
    /// Act when this passes (`--jitter`); `jittered` once it has.
    act_at: Option<Instant>,
    jittered: bool,
    /// Events came in while validating: read again once it ends.
    rescan: bool,
    /// A read found keys without their user-visible link: the next event is read at once, and
    /// at this time (ten quiet periods on) the content is acted on as it is, in case the links
    /// never come (a kubelet that died half-way).
    links_due: Option<Instant>,
    unreadable: BTreeSet<PathBuf>,
}

impl ChangeTracker {
    pub fn new(policy: ChangePolicy) -> ChangeTracker {
        ChangeTracker {
            policy,
            phase: Phase::Starting,
            baseline: Snapshot::default(),
            generation: 0,
            started_with: Snapshot::default(),
            serving: Snapshot::default(),
            refused: None,
            settle_at: None,
            act_at: None,
            jittered: false,
            rescan: false,
            links_due: None,
            unreadable: BTreeSet::new(),
        }
    }

    /// The first step: read the reference content.
    pub fn start(&mut self) -> Vec<Step> {
        vec![Step::Scan]
    }

    /// Whether the first read is still to come.
    #[cfg(test)]
    pub fn starting(&self) -> bool {
        self.phase == Phase::Starting
    }

    /// The content last acted on (or started with).
    pub fn baseline(&self) -> &Snapshot {
        &self.baseline
    }

    /// Inotify reported something that may be new content: read again after the quiet period;
    /// on a kubelet `commit` (the `..data` swap: the whole update is live), read now.
    pub fn events(&mut self, now: Instant, commit: bool) {
        let at_once = commit || self.links_due.is_some();
        let wait = if at_once { Duration::ZERO } else { self.policy.debounce };
        self.settle_at = Some(crate::time::after(now, wait));
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(self.settle_at, self.act_at)
    }

    /// Deadlines that have passed.
    pub fn tick(&mut self, now: Instant) -> Vec<Step> {
        let settled = self.settle_at.is_some_and(|t| now >= t);
        let jittered = self.act_at.is_some_and(|t| now >= t);
        if settled {
            self.settle_at = None;
        }
        if jittered {
            self.act_at = None;
            self.jittered = true;
        }
        if !settled && !jittered {
            return Vec::new();
        }
        match self.phase {
            Phase::Validating { .. } => {
                self.rescan = true;
                Vec::new()
            }
            Phase::Starting => Vec::new(), // the first read is under way
            Phase::Idle | Phase::Scanning => {
                self.phase = Phase::Scanning;
                vec![Step::Scan]
            }
        }
    }

    /// A read finished. `jitter_draw` is the random delay to use if `--jitter` applies now.
    /// The watched content was read: `unlinked` are keys of a kubelet volume whose user-visible
    /// link is not there yet.
    pub fn scanned(
        &mut self,
        now: Instant,
        snapshot: Snapshot,
        unlinked: Vec<PathBuf>,
        jitter_draw: Duration,
    ) -> Vec<Step> {
        let mut out = self.note_unreadable(&snapshot);
        if self.phase == Phase::Starting {
            self.phase = Phase::Idle;
            self.baseline = self.baseline.merged(&snapshot);
            self.started_with = self.baseline.clone();
            return out;
        }
        if matches!(self.phase, Phase::Validating { .. }) {
            return out; // a read for a start, while validating: the validation's result decides
        }
        self.phase = Phase::Idle;
        if unlinked.is_empty() || self.links_due.is_some_and(|due| now >= due) {
            self.links_due = None;
        } else {
            // An app started now would not find these keys: wait for the kubelet's links.
            let wait = self.policy.debounce.saturating_mul(LINKS_WAIT_PERIODS);
            let due = *self.links_due.get_or_insert(crate::time::after(now, wait));
            self.settle_at = Some(due);
            out.push(Step::LinksPending(unlinked));
            return out;
        }
        let changes = snapshot.changes_from(&self.baseline);
        if changes.is_empty() {
            self.act_at = None;
            self.jittered = false;
            out.push(Step::Unchanged);
            return out;
        }
        if self.refused.as_ref().is_some_and(|r| snapshot.changes_from(r).is_empty()) {
            out.push(Step::StillRefused);
            return out;
        }
        if !self.policy.jitter.is_zero() && !self.jittered {
            if self.act_at.is_none() {
                self.act_at = Some(crate::time::after(now, jitter_draw));
                out.push(Step::Jitter(jitter_draw));
            }
            return out;
        }
        self.jittered = false;
        out.extend(self.validate_or_act(snapshot, changes));
        out
    }

    fn note_unreadable(&mut self, snapshot: &Snapshot) -> Vec<Step> {
        let now = snapshot.unreadable();
        let newly: Vec<PathBuf> = now.difference(&self.unreadable).cloned().collect();
        self.unreadable = now;
        if newly.is_empty() { Vec::new() } else { vec![Step::Unreadable(newly)] }
    }

    fn validate_or_act(&mut self, snapshot: Snapshot, changes: Vec<Changed>) -> Vec<Step> {
        let paths: Vec<PathBuf> = match self.policy.validation {
            Validation::None => return self.act(snapshot, changes),
            Validation::Once => Vec::new(),
            Validation::PerFile => {
                let existing: Vec<PathBuf> =
                    changes.iter().filter(|c| c.new.is_some()).map(|c| c.path.clone()).collect();
                if existing.is_empty() {
                    return self.act(snapshot, changes); // only removals: nothing to validate
                }
                existing
            }
        };
        self.phase = Phase::Validating { snapshot, changes, generation: self.generation };
        vec![Step::Validate(paths)]
    }

    fn act(&mut self, snapshot: Snapshot, changes: Vec<Changed>) -> Vec<Step> {
        self.refused = None;
        self.baseline = self.baseline.merged(&snapshot);
        self.generation += 1;
        let action = self.policy.on_change;
        if action != OnChange::Restart || self.policy.dry_run {
            // no new app will start: later restarts are described from here
            self.started_with = self.baseline.clone();
        }
        vec![Step::Act { action, changes, dry_run: self.policy.dry_run }]
    }

    /// The validator finished: `Err` carries why it refused.
    pub fn validated(&mut self, result: Result<(), String>) -> Vec<Step> {
        let phase = std::mem::replace(&mut self.phase, Phase::Idle);
        let Phase::Validating { snapshot, changes, generation } = phase else {
            self.phase = phase;
            return Vec::new();
        };
        let mut out = if generation != self.generation {
            self.rescan = true; // the reference moved meanwhile: judge the content afresh
            Vec::new()
        } else {
            match result {
                Ok(()) => self.act(snapshot, changes),
                Err(why) => {
                    self.refused = Some(snapshot);
                    vec![Step::Refused { changes, why }]
                }
            }
        };
        if std::mem::take(&mut self.rescan) {
            self.phase = Phase::Scanning;
            out.push(Step::Scan);
        }
        out
    }

    /// The app is about to start with `snapshot` (read just before): it becomes the reference.
    /// Returns what changed since the previous app started (for the restart's log line), and
    /// notes about unreadable files.
    pub fn starting_app(&mut self, snapshot: &Snapshot) -> (Vec<Changed>, Vec<Step>) {
        let notes = self.note_unreadable(snapshot);
        if self.phase == Phase::Starting {
            self.phase = Phase::Idle;
        } else if self.phase == Phase::Scanning {
            self.phase = Phase::Idle; // this read superseded the one in progress
        }
        let merged = self.baseline.merged(snapshot);
        if merged != self.baseline {
            self.baseline = merged;
            self.generation += 1;
        }
        let changes = self.baseline.changes_from(&self.started_with);
        self.serving = std::mem::replace(&mut self.started_with, self.baseline.clone());
        (changes, notes)
    }

    /// The app started last did not take over (start-first): the one before serves on, with
    /// its content as the reference, and the new content counts as refused until it changes.
    pub fn start_failed(&mut self) {
        self.refused = Some(std::mem::replace(&mut self.started_with, self.serving.clone()));
        self.baseline = self.serving.clone();
        self.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn policy() -> ChangePolicy {
        ChangePolicy {
            debounce: ms(100),
            jitter: Duration::ZERO,
            validation: Validation::None,
            on_change: OnChange::Restart,
            dry_run: false,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A snapshot of one watched directory `/d` with these files (`None`: unreadable).
    fn snap(files: &[(&str, Option<u64>)]) -> Snapshot {
        let files: BTreeMap<PathBuf, Option<u64>> =
            files.iter().map(|(p, h)| (PathBuf::from(format!("/d/{p}")), *h)).collect();
        Snapshot([(PathBuf::from("/d"), Some(files))].into())
    }

    fn started(p: ChangePolicy, t0: Instant, content: Snapshot) -> ChangeTracker {
        let mut c = ChangeTracker::new(p);
        assert_eq!(c.start(), [Step::Scan]);
        assert!(c.scanned(t0, content, Vec::new(), ms(0)).is_empty());
        assert!(!c.starting());
        c
    }

    /// An event at `at`, the read after the debounce, and what the tracker makes of `content`.
    fn next_read(c: &mut ChangeTracker, at: Instant, content: Snapshot) -> Vec<Step> {
        c.events(at, false);
        c.tick(at + ms(100));
        c.scanned(at + ms(100), content, Vec::new(), ms(0))
    }

    fn acted(steps: &[Step]) -> Option<(OnChange, usize, bool)> {
        steps.iter().find_map(|s| match s {
            Step::Act { action, changes, dry_run } => Some((*action, changes.len(), *dry_run)),
            _ => None,
        })
    }

    #[test]
    fn debounce_restarts_the_quiet_period_at_each_event() {
        let t0 = Instant::now();
        let mut c = started(policy(), t0, snap(&[("a", Some(1))]));
        c.events(t0, false);
        c.events(t0 + ms(80), false);
        assert_eq!(c.next_deadline(), Some(t0 + ms(180)));
        assert!(c.tick(t0 + ms(150)).is_empty(), "still within the quiet period");
        assert_eq!(c.tick(t0 + ms(180)), [Step::Scan]);
        assert_eq!(c.next_deadline(), None);
        let steps = c.scanned(t0 + ms(181), snap(&[("a", Some(2))]), Vec::new(), ms(0));
        assert_eq!(acted(&steps), Some((OnChange::Restart, 1, false)));
    }

    #[test]
    fn a_commit_whose_new_keys_are_not_linked_yet_waits_for_the_links() {
        let t0 = Instant::now();
        let new = || snap(&[("a", Some(2)), ("b", Some(3))]);
        let mut c = started(policy(), t0, snap(&[("a", Some(1))]));
        c.events(t0, true);
        assert_eq!(c.tick(t0), [Step::Scan]);
        let steps = c.scanned(t0 + ms(1), new(), vec![PathBuf::from("/d/b")], ms(0));
        assert_eq!(steps, [Step::LinksPending(vec![PathBuf::from("/d/b")])], "an app started now misses b");
        // the kubelet links b: that event is read at once, and the update is acted on, once
        c.events(t0 + ms(2), false);
        assert_eq!(c.tick(t0 + ms(2)), [Step::Scan]);
        let steps = c.scanned(t0 + ms(3), new(), Vec::new(), ms(0));
        assert_eq!(acted(&steps), Some((OnChange::Restart, 2, false)));
        // later events have the debounce again
        c.events(t0 + ms(10), false);
        assert!(c.tick(t0 + ms(11)).is_empty());
        assert_eq!(c.tick(t0 + ms(110)), [Step::Scan]);
    }

    #[test]
    fn links_that_never_come_are_waited_for_ten_quiet_periods() {
        let t0 = Instant::now();
        let new = || snap(&[("a", Some(2)), ("b", Some(3))]);
        let mut c = started(policy(), t0, snap(&[("a", Some(1))]));
        c.events(t0, true);
        c.tick(t0);
        let unlinked = vec![PathBuf::from("/d/b")];
        assert!(acted(&c.scanned(t0, new(), unlinked.clone(), ms(0))).is_none());
        assert_eq!(c.next_deadline(), Some(t0 + ms(1000)));
        // an unrelated event is read at once, and the keys are still not linked
        c.events(t0 + ms(300), false);
        assert_eq!(c.tick(t0 + ms(300)), [Step::Scan]);
        assert!(acted(&c.scanned(t0 + ms(300), new(), unlinked.clone(), ms(0))).is_none());
        assert_eq!(c.next_deadline(), Some(t0 + ms(1000)), "the same limit");
        assert_eq!(c.tick(t0 + ms(1000)), [Step::Scan]);
        let steps = c.scanned(t0 + ms(1000), new(), unlinked, ms(0));
        assert_eq!(acted(&steps), Some((OnChange::Restart, 2, false)), "acted on as it is");
    }

    #[test]
    fn a_kubelet_commit_is_read_at_once_other_events_wait_for_the_quiet_period() {
        let t0 = Instant::now();
        let mut c = started(policy(), t0, snap(&[("a", Some(1))]));
        c.events(t0, false);
        c.events(t0 + ms(5), true);
        assert_eq!(c.next_deadline(), Some(t0 + ms(5)), "no debounce after the swap");
        assert_eq!(c.tick(t0 + ms(5)), [Step::Scan]);
        let steps = c.scanned(t0 + ms(6), snap(&[("a", Some(2)), ("b", Some(3))]), Vec::new(), ms(0));
        assert_eq!(acted(&steps), Some((OnChange::Restart, 2, false)));
        // the kubelet then creates the new key's top-level symlink: debounced, and no change
        c.events(t0 + ms(7), false);
        assert!(c.tick(t0 + ms(8)).is_empty());
        assert_eq!(c.tick(t0 + ms(107)), [Step::Scan]);
        assert_eq!(
            c.scanned(t0 + ms(108), snap(&[("a", Some(2)), ("b", Some(3))]), Vec::new(), ms(0)),
            [Step::Unchanged]
        );
        // a swap that changed nothing watched does nothing
        c.events(t0 + ms(200), true);
        c.tick(t0 + ms(200));
        assert_eq!(
            c.scanned(t0 + ms(201), snap(&[("a", Some(2)), ("b", Some(3))]), Vec::new(), ms(0)),
            [Step::Unchanged]
        );
    }

    #[test]
    fn the_same_content_again_is_no_change() {
        let t0 = Instant::now();
        let mut c = started(policy(), t0, snap(&[("a", Some(1))]));
        assert_eq!(next_read(&mut c, t0, snap(&[("a", Some(1))])), [Step::Unchanged]);
        // acted-on content is the new reference
        assert!(acted(&next_read(&mut c, t0, snap(&[("a", Some(2))]))).is_some());
        c.tick(t0 + ms(200));
        assert_eq!(c.scanned(t0, snap(&[("a", Some(2))]), Vec::new(), ms(0)), [Step::Unchanged]);
    }

    #[test]
    fn events_during_a_read_start_it_again() {
        let t0 = Instant::now();
        let mut c = started(policy(), t0, snap(&[("a", Some(1))]));
        c.events(t0, false);
        assert_eq!(c.tick(t0 + ms(100)), [Step::Scan]);
        c.events(t0 + ms(110), false);
        assert_eq!(c.tick(t0 + ms(210)), [Step::Scan], "the read in progress is dropped for a new one");
    }

    #[test]
    fn a_kubelet_update_read_mid_swap_then_complete_acts_once() {
        // A read between the new timestamped dir and the `..data` swap sees the old content;
        // the swap's event brings a second read that sees the new one.
        let t0 = Instant::now();
        let mut c = started(policy(), t0, snap(&[("a", Some(1)), ("b", Some(1))]));
        c.events(t0, false);
        c.tick(t0 + ms(100));
        assert_eq!(
            c.scanned(t0 + ms(100), snap(&[("a", Some(1)), ("b", Some(1))]), Vec::new(), ms(0)),
            [Step::Unchanged]
        );
        let steps = next_read(&mut c, t0 + ms(101), snap(&[("a", Some(2)), ("b", Some(1)), ("c", Some(3))]));
        assert_eq!(acted(&steps), Some((OnChange::Restart, 2, false)));
        // the removal of a key after the swap is one more real change
        let steps = next_read(&mut c, t0 + ms(300), snap(&[("a", Some(2)), ("c", Some(3))]));
        assert_eq!(acted(&steps), Some((OnChange::Restart, 1, false)));
    }

    #[test]
    fn refused_content_is_not_retried_until_it_changes() {
        let t0 = Instant::now();
        let p = ChangePolicy { validation: Validation::PerFile, ..policy() };
        let mut c = started(p, t0, snap(&[("a", Some(1)), ("b", Some(1))]));
        let steps = next_read(&mut c, t0, snap(&[("a", Some(2)), ("b", Some(2))]));
        assert_eq!(steps, [Step::Validate(vec!["/d/a".into(), "/d/b".into()])], "each changed file");
        let steps = c.validated(Err("exit 1".into()));
        assert!(
            matches!(&steps[..], [Step::Refused { changes, why }] if changes.len() == 2 && why == "exit 1")
        );
        assert_eq!(
            next_read(&mut c, t0 + ms(200), snap(&[("a", Some(2)), ("b", Some(2))])),
            [Step::StillRefused]
        );
        let steps = next_read(&mut c, t0 + ms(400), snap(&[("a", Some(3)), ("b", Some(2))]));
        assert!(matches!(&steps[..], [Step::Validate(_)]));
        assert_eq!(acted(&c.validated(Ok(()))), Some((OnChange::Restart, 2, false)));
        // back to the refused bytes: a change from what runs now, validated again
        let steps = next_read(&mut c, t0 + ms(600), snap(&[("a", Some(2)), ("b", Some(2))]));
        assert_eq!(steps, [Step::Validate(vec!["/d/a".into()])]);
    }

    #[test]
    fn removed_files_are_not_validated() {
        let t0 = Instant::now();
        let p = ChangePolicy { validation: Validation::PerFile, ..policy() };
        let mut c = started(p.clone(), t0, snap(&[("a", Some(1)), ("b", Some(1))]));
        let steps = next_read(&mut c, t0, snap(&[("a", Some(1))]));
        assert_eq!(acted(&steps), Some((OnChange::Restart, 1, false)), "only a removal: act at once");
        let mut c = started(ChangePolicy { validation: Validation::Once, ..p }, t0, snap(&[("a", Some(1))]));
        assert_eq!(next_read(&mut c, t0, snap(&[])), [Step::Validate(vec![])], "without {{}}: once");
    }

    #[test]
    fn events_while_validating_read_again_after_it() {
        let t0 = Instant::now();
        let p = ChangePolicy { validation: Validation::Once, ..policy() };
        let mut c = started(p, t0, snap(&[("a", Some(1))]));
        next_read(&mut c, t0, snap(&[("a", Some(2))]));
        c.events(t0 + ms(150), false);
        assert!(c.tick(t0 + ms(250)).is_empty(), "no read while the validator runs");
        let steps = c.validated(Ok(()));
        assert_eq!(acted(&steps), Some((OnChange::Restart, 1, false)));
        assert_eq!(steps.last(), Some(&Step::Scan));
    }

    #[test]
    fn a_validation_overtaken_by_an_app_start_is_not_acted_on() {
        let t0 = Instant::now();
        let p = ChangePolicy { validation: Validation::Once, ..policy() };
        let mut c = started(p, t0, snap(&[("a", Some(1))]));
        next_read(&mut c, t0, snap(&[("a", Some(2))]));
        // the app crashed and restarts with content 3 meanwhile
        assert_eq!(c.starting_app(&snap(&[("a", Some(3))])).0.len(), 1);
        assert_eq!(c.validated(Ok(())), [Step::Scan], "content 2 is stale: read again");
        assert_eq!(c.scanned(t0, snap(&[("a", Some(3))]), Vec::new(), ms(0)), [Step::Unchanged]);
    }

    #[test]
    fn jitter_delays_the_action_once() {
        let t0 = Instant::now();
        let mut c = started(ChangePolicy { jitter: ms(1000), ..policy() }, t0, snap(&[("a", Some(1))]));
        c.events(t0, false);
        c.tick(t0 + ms(100));
        assert_eq!(
            c.scanned(t0 + ms(100), snap(&[("a", Some(2))]), Vec::new(), ms(700)),
            [Step::Jitter(ms(700))]
        );
        assert_eq!(c.next_deadline(), Some(t0 + ms(800)));
        // another event meanwhile does not move the jitter deadline
        c.events(t0 + ms(300), false);
        c.tick(t0 + ms(400));
        assert!(c.scanned(t0 + ms(400), snap(&[("a", Some(3))]), Vec::new(), ms(50)).is_empty());
        assert_eq!(c.next_deadline(), Some(t0 + ms(800)));
        assert_eq!(c.tick(t0 + ms(800)), [Step::Scan]);
        let steps = c.scanned(t0 + ms(800), snap(&[("a", Some(3))]), Vec::new(), ms(999));
        assert_eq!(acted(&steps), Some((OnChange::Restart, 1, false)));
        // the next change draws a new delay
        c.events(t0 + ms(900), false);
        c.tick(t0 + ms(1000));
        assert_eq!(
            c.scanned(t0 + ms(1000), snap(&[("a", Some(4))]), Vec::new(), ms(10)),
            [Step::Jitter(ms(10))]
        );
    }

    #[test]
    fn jitter_then_back_to_the_old_content_does_nothing() {
        let t0 = Instant::now();
        let mut c = started(ChangePolicy { jitter: ms(1000), ..policy() }, t0, snap(&[("a", Some(1))]));
        c.events(t0, false);
        c.tick(t0 + ms(100));
        c.scanned(t0, snap(&[("a", Some(2))]), Vec::new(), ms(500));
        c.tick(t0 + ms(600));
        assert_eq!(c.scanned(t0, snap(&[("a", Some(1))]), Vec::new(), ms(0)), [Step::Unchanged]);
        c.events(t0 + ms(700), false);
        c.tick(t0 + ms(800));
        assert_eq!(
            c.scanned(t0, snap(&[("a", Some(2))]), Vec::new(), ms(5)),
            [Step::Jitter(ms(5))],
            "a fresh delay"
        );
    }

    #[test]
    fn dry_run_moves_the_reference_and_says_so() {
        let t0 = Instant::now();
        let mut c = started(ChangePolicy { dry_run: true, ..policy() }, t0, snap(&[("a", Some(1))]));
        assert_eq!(
            acted(&next_read(&mut c, t0, snap(&[("a", Some(2))]))),
            Some((OnChange::Restart, 1, true))
        );
        assert_eq!(
            next_read(&mut c, t0 + ms(200), snap(&[("a", Some(2))])),
            [Step::Unchanged],
            "logged once"
        );
    }

    #[test]
    fn an_app_start_takes_what_changed_since_the_last_start() {
        let t0 = Instant::now();
        let mut c = started(policy(), t0, snap(&[("a", Some(1))]));
        next_read(&mut c, t0, snap(&[("a", Some(2))]));
        // another update lands during the stop and is read just before the start
        let (changes, _) = c.starting_app(&snap(&[("a", Some(3))]));
        assert_eq!(changes, [Changed { path: "/d/a".into(), old: Some(1), new: Some(3) }]);
        assert_eq!(next_read(&mut c, t0 + ms(200), snap(&[("a", Some(3))])), [Step::Unchanged]);
    }

    #[test]
    fn unreadable_files_are_reported_once_and_change_nothing() {
        let t0 = Instant::now();
        let mut c = started(policy(), t0, snap(&[("a", Some(1))]));
        let steps = next_read(&mut c, t0, snap(&[("a", None)]));
        assert_eq!(steps, [Step::Unreadable(vec!["/d/a".into()]), Step::Unchanged]);
        assert_eq!(next_read(&mut c, t0, snap(&[("a", None)])), [Step::Unchanged], "reported once");
        assert_eq!(next_read(&mut c, t0, snap(&[("a", Some(1))])), [Step::Unchanged], "readable again");
    }

    #[test]
    fn a_failed_start_first_update_refuses_the_new_content() {
        let t0 = Instant::now();
        let mut c = started(policy(), t0, snap(&[("a", Some(1))]));
        next_read(&mut c, t0, snap(&[("a", Some(2))]));
        c.starting_app(&snap(&[("a", Some(2))]));
        c.start_failed();
        assert_eq!(c.baseline(), &snap(&[("a", Some(1))]), "what the old app runs");
        assert_eq!(next_read(&mut c, t0 + ms(200), snap(&[("a", Some(2))])), [Step::StillRefused]);
        assert!(
            acted(&next_read(&mut c, t0 + ms(400), snap(&[("a", Some(3))]))).is_some(),
            "new content: tried again"
        );
    }

    #[test]
    fn other_actions_keep_the_reference_for_restart_lines() {
        let t0 = Instant::now();
        let p = ChangePolicy { on_change: OnChange::Signal(crate::signals::Signal::HUP), ..policy() };
        let mut c = started(p, t0, snap(&[("a", Some(1))]));
        c.events(t0, false);
        c.tick(t0 + ms(100));
        assert_eq!(
            acted(&c.scanned(t0, snap(&[("a", Some(2))]), Vec::new(), ms(0))),
            Some((OnChange::Signal(crate::signals::Signal::HUP), 1, false))
        );
        // a later start (after a crash) with the same content has nothing new to name
        assert!(c.starting_app(&snap(&[("a", Some(2))])).0.is_empty());
    }
}
