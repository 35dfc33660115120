//! What a case is, what a run of it gives, and how the results are shown:
//! text tables, JSON, CSV and an SVG chart of the ratios.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::Config;

/// How a row takes part in the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The uniloop row every ratio is computed from.
    Subject,
    /// Another uniloop configuration (the poll backend, say).
    Uniloop,
    /// A peer library used the way its docs show.
    Peer,
    /// A hand-written lower bound on the cost (no library, or no wake-up).
    Limit,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Subject => "uniloop",
            Role::Uniloop => "uniloop-variant",
            Role::Peer => "peer",
            Role::Limit => "limit",
        }
    }
}

/// One measurement of one system.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    pub(crate) value: f64,
    /// Secondary figures: `(name, value, unit)`.
    pub(crate) extras: Vec<(&'static str, f64, &'static str)>,
}

impl Sample {
    pub(crate) fn new(value: f64) -> Sample {
        Sample {
            value,
            extras: Vec::new(),
        }
    }

    pub(crate) fn with(mut self, name: &'static str, value: f64, unit: &'static str) -> Sample {
        self.extras.push((name, value, unit));
        self
    }
}

type RunFn = Box<dyn FnMut() -> io::Result<Sample>>;

/// A system under test within a case.
pub(crate) struct System {
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) run: RunFn,
}

impl System {
    pub(crate) fn new(
        name: &str,
        role: Role,
        run: impl FnMut() -> io::Result<Sample> + 'static,
    ) -> System {
        System {
            name: name.to_string(),
            role,
            run: Box::new(run),
        }
    }
}

/// A goal from the issue, checked against the medians.
#[derive(Clone, Debug)]
pub(crate) enum Goal {
    /// `subject ÷ peer ≥ min` (for figures where higher is better).
    RatioAtLeast { peer: String, min: f64 },
    /// `subject ÷ peer ≤ max` (for figures where lower is better: a cost).
    RatioAtMost { peer: String, max: f64 },
    /// `system ÷ base ≥ min`, for a row that is not the subject (another
    /// uniloop configuration measured against the subject or a limit).
    PairAtLeast {
        system: String,
        base: String,
        min: f64,
    },
    /// The named system's own figure is at most `max`.
    ValueAtMost { system: String, max: f64 },
    /// `subject's extra ÷ peer's extra ≤ max` (for a lower-is-better
    /// secondary figure such as a p50 latency).
    ExtraRatioAtMost {
        peer: String,
        extra: &'static str,
        max: f64,
    },
    /// `system's extra ÷ peer's extra ≤ max`, for a row that is not the
    /// subject (another uniloop configuration against a limit).
    PairExtraAtMost {
        system: String,
        peer: String,
        extra: &'static str,
        max: f64,
    },
}

/// One table: a set of systems measured the same way.
pub(crate) struct Case {
    /// The command-line name this case belongs to.
    pub(crate) id: &'static str,
    /// Unique name of this table (`echo-64`, say).
    pub(crate) key: String,
    pub(crate) title: String,
    /// How it is measured, in one or two sentences.
    pub(crate) method: String,
    pub(crate) unit: &'static str,
    pub(crate) higher_is_better: bool,
    /// Overrides the configured repetitions (deterministic cases need one).
    pub(crate) reps: Option<usize>,
    pub(crate) systems: Vec<System>,
    pub(crate) goals: Vec<Goal>,
    pub(crate) notes: Vec<String>,
}

impl Case {
    pub(crate) fn new(id: &'static str, key: &str, title: &str, unit: &'static str) -> Case {
        Case {
            id,
            key: key.to_string(),
            title: title.to_string(),
            method: String::new(),
            unit,
            higher_is_better: true,
            reps: None,
            systems: Vec::new(),
            goals: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub(crate) fn method(mut self, m: &str) -> Case {
        self.method = m.to_string();
        self
    }

    pub(crate) fn lower_is_better(mut self) -> Case {
        self.higher_is_better = false;
        self
    }

    pub(crate) fn reps(mut self, n: usize) -> Case {
        self.reps = Some(n);
        self
    }

    pub(crate) fn system(
        mut self,
        name: &str,
        role: Role,
        run: impl FnMut() -> io::Result<Sample> + 'static,
    ) -> Case {
        self.systems.push(System::new(name, role, run));
        self
    }

    pub(crate) fn goal_at_least(mut self, peer: &str, min: f64) -> Case {
        self.goals.push(Goal::RatioAtLeast {
            peer: peer.to_string(),
            min,
        });
        self
    }

    /// `subject ÷ peer ≤ max`, for a lower-is-better figure.
    pub(crate) fn goal_at_most(mut self, peer: &str, max: f64) -> Case {
        self.goals.push(Goal::RatioAtMost {
            peer: peer.to_string(),
            max,
        });
        self
    }

    /// A goal for the row `system` itself: its figure ÷ `base`'s ≥ `min`.
    pub(crate) fn goal_pair_at_least(mut self, system: &str, base: &str, min: f64) -> Case {
        self.goals.push(Goal::PairAtLeast {
            system: system.to_string(),
            base: base.to_string(),
            min,
        });
        self
    }

    pub(crate) fn goal_value_at_most(mut self, system: &str, max: f64) -> Case {
        self.goals.push(Goal::ValueAtMost {
            system: system.to_string(),
            max,
        });
        self
    }

    pub(crate) fn goal_extra_at_most(mut self, peer: &str, extra: &'static str, max: f64) -> Case {
        self.goals.push(Goal::ExtraRatioAtMost {
            peer: peer.to_string(),
            extra,
            max,
        });
        self
    }

    /// `system's extra ÷ peer's extra ≤ max`, for a lower-is-better
    /// secondary figure of a row that is not the subject.
    pub(crate) fn goal_pair_extra_at_most(
        mut self,
        system: &str,
        peer: &str,
        extra: &'static str,
        max: f64,
    ) -> Case {
        self.goals.push(Goal::PairExtraAtMost {
            system: system.to_string(),
            peer: peer.to_string(),
            extra,
            max,
        });
        self
    }

    pub(crate) fn note(mut self, n: &str) -> Case {
        self.notes.push(n.to_string());
        self
    }
}

/// A system's results over all repetitions.
#[derive(Clone, Debug)]
pub(crate) struct SystemResult {
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) median: f64,
    pub(crate) samples: Vec<f64>,
    pub(crate) extras: Vec<(&'static str, f64, &'static str)>,
    /// Each extra's value per repetition, in `extras` order.
    pub(crate) extra_samples: Vec<Vec<f64>>,
    /// `subject median ÷ this median` (None for the subject itself).
    pub(crate) ratio: Option<f64>,
    /// The smallest and largest per-repetition `subject ÷ this` (the two
    /// systems of one repetition ran back to back).
    pub(crate) spread: Option<Spread>,
}

/// The range of a per-repetition ratio: `(min, max)`.
pub(crate) type Spread = (f64, f64);

/// `a[i] / b[i]` over the repetitions both have (a system that failed stops
/// there, so sample `i` is repetition `i + 1` for every system).
fn per_rep(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x / y).collect()
}

fn spread_of(v: &[f64]) -> Option<Spread> {
    let min = v.iter().copied().reduce(f64::min)?;
    let max = v.iter().copied().reduce(f64::max)?;
    Some((min, max))
}

/// `0.98–1.10`.
fn fmt_spread(s: Option<Spread>) -> String {
    match s {
        Some((lo, hi)) if lo.is_finite() && hi.is_finite() => format!("{lo:.2}–{hi:.2}"),
        _ => "—".to_string(),
    }
}

impl SystemResult {
    pub(crate) fn new(name: &str, role: Role, samples: Vec<Sample>) -> SystemResult {
        let values: Vec<f64> = samples.iter().map(|s| s.value).collect();
        let extra_samples: Vec<Vec<f64>> = (0..samples[0].extras.len())
            .map(|i| {
                samples
                    .iter()
                    .filter_map(|s| s.extras.get(i).map(|e| e.1))
                    .collect()
            })
            .collect();
        let extras = samples[0]
            .extras
            .iter()
            .zip(&extra_samples)
            .map(|(&(name, _, unit), vals)| (name, median(vals), unit))
            .collect();
        SystemResult {
            name: name.to_string(),
            role,
            median: median(&values),
            samples: values,
            extras,
            extra_samples,
            ratio: None,
            spread: None,
        }
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A goal with its outcome.
#[derive(Clone, Debug)]
pub(crate) struct GoalResult {
    /// The row the goal is about.
    pub(crate) system: String,
    pub(crate) text: String,
    /// The goal as said on the row of `system` (the summary table).
    pub(crate) short: String,
    pub(crate) measured: Option<f64>,
    /// The range of the per-repetition figure the goal is about.
    pub(crate) spread: Option<Spread>,
    /// Met only if the whole spread meets it.
    pub(crate) met: Option<bool>,
}

/// A finished case.
#[derive(Debug)]
pub(crate) struct CaseResult {
    pub(crate) id: &'static str,
    pub(crate) key: String,
    pub(crate) title: String,
    pub(crate) method: String,
    pub(crate) unit: &'static str,
    pub(crate) higher_is_better: bool,
    pub(crate) reps: usize,
    pub(crate) systems: Vec<SystemResult>,
    pub(crate) goals: Vec<GoalResult>,
    pub(crate) notes: Vec<String>,
    pub(crate) errors: Vec<String>,
}

impl CaseResult {
    pub(crate) fn new(
        case: Case,
        mut systems: Vec<SystemResult>,
        errors: Vec<String>,
        reps: usize,
    ) -> CaseResult {
        let subject = systems
            .iter()
            .find(|s| s.role == Role::Subject)
            .map(|s| (s.median, s.samples.clone()));
        for s in &mut systems {
            if s.role != Role::Subject {
                if let Some((median, samples)) = &subject {
                    s.ratio = Some(median / s.median);
                    s.spread = spread_of(&per_rep(samples, &s.samples));
                }
            }
        }
        let goals = case
            .goals
            .iter()
            .map(|g| match g {
                Goal::RatioAtLeast { peer, min } => {
                    let s = systems.iter().find(|s| &s.name == peer);
                    let spread = s.and_then(|s| s.spread);
                    GoalResult {
                        system: peer.clone(),
                        text: format!("uniloop ÷ {peer} ≥ {min:.2}×"),
                        short: format!("uniloop ÷ this ≥ {min:.2}×"),
                        measured: s.and_then(|s| s.ratio),
                        spread,
                        met: spread.map(|(lo, _)| lo >= *min),
                    }
                }
                Goal::RatioAtMost { peer, max } => {
                    let s = systems.iter().find(|s| &s.name == peer);
                    let spread = s.and_then(|s| s.spread);
                    GoalResult {
                        system: peer.clone(),
                        text: format!("uniloop ÷ {peer} ≤ {max:.2}×"),
                        short: format!("uniloop ÷ this ≤ {max:.2}×"),
                        measured: s.and_then(|s| s.ratio),
                        spread,
                        met: spread.map(|(_, hi)| hi <= *max),
                    }
                }
                Goal::PairAtLeast { system, base, min } => {
                    let get = |name: &str| systems.iter().find(|s| s.name == name);
                    let (r, spread) = match (get(system), get(base)) {
                        (Some(a), Some(b)) => (
                            Some(a.median / b.median),
                            spread_of(&per_rep(&a.samples, &b.samples)),
                        ),
                        _ => (None, None),
                    };
                    GoalResult {
                        system: system.clone(),
                        text: format!("{system} ÷ {base} ≥ {min:.2}×"),
                        short: format!("this ÷ {base} ≥ {min:.2}×"),
                        measured: r,
                        spread,
                        met: spread.map(|(lo, _)| lo >= *min),
                    }
                }
                Goal::ExtraRatioAtMost { peer, extra, max } => {
                    let get = |s: &SystemResult| {
                        let i = s.extras.iter().position(|e| e.0 == *extra)?;
                        Some((s.extras[i].1, s.extra_samples[i].clone()))
                    };
                    let subject = systems.iter().find(|s| s.role == Role::Subject);
                    let other = systems.iter().find(|s| &s.name == peer);
                    let (r, spread) = match (subject.and_then(get), other.and_then(get)) {
                        (Some((u, us)), Some((p, ps))) => {
                            (Some(u / p), spread_of(&per_rep(&us, &ps)))
                        }
                        _ => (None, None),
                    };
                    GoalResult {
                        system: peer.clone(),
                        text: format!("uniloop {extra} ÷ {peer} {extra} ≤ {max:.2}×"),
                        short: format!("{extra}: uniloop ÷ this ≤ {max:.2}×"),
                        measured: r,
                        spread,
                        met: spread.map(|(_, hi)| hi <= *max),
                    }
                }
                Goal::PairExtraAtMost {
                    system,
                    peer,
                    extra,
                    max,
                } => {
                    let get = |s: &SystemResult| {
                        let i = s.extras.iter().position(|e| e.0 == *extra)?;
                        Some((s.extras[i].1, s.extra_samples[i].clone()))
                    };
                    let this = systems.iter().find(|s| &s.name == system);
                    let other = systems.iter().find(|s| &s.name == peer);
                    let (r, spread) = match (this.and_then(get), other.and_then(get)) {
                        (Some((u, us)), Some((p, ps))) => {
                            (Some(u / p), spread_of(&per_rep(&us, &ps)))
                        }
                        _ => (None, None),
                    };
                    GoalResult {
                        system: system.clone(),
                        text: format!("{system} {extra} ÷ {peer} {extra} ≤ {max:.2}×"),
                        short: format!("{extra}: this ÷ {peer} ≤ {max:.2}×"),
                        measured: r,
                        spread,
                        met: spread.map(|(_, hi)| hi <= *max),
                    }
                }
                Goal::ValueAtMost { system, max } => {
                    let s = systems.iter().find(|s| &s.name == system);
                    let spread = s.and_then(|s| spread_of(&s.samples));
                    GoalResult {
                        system: system.clone(),
                        text: format!("{system}: {} ≤ {max:.2}", case.unit),
                        short: format!("{} ≤ {max:.2}", case.unit),
                        measured: s.map(|s| s.median),
                        spread,
                        met: spread.map(|(_, hi)| hi <= *max),
                    }
                }
            })
            .collect();
        CaseResult {
            id: case.id,
            key: case.key,
            title: case.title,
            method: case.method,
            unit: case.unit,
            higher_is_better: case.higher_is_better,
            reps,
            systems,
            goals,
            notes: case.notes,
            errors,
        }
    }
}

/// `12.3 M items/s`, `842 ns`, `1.07`.
pub(crate) fn fmt_value(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return format!("{v} {unit}");
    }
    if unit.ends_with("/s") {
        let (scaled, prefix) = if v >= 1e9 {
            (v / 1e9, "G")
        } else if v >= 1e6 {
            (v / 1e6, "M")
        } else if v >= 1e3 {
            (v / 1e3, "k")
        } else {
            (v, "")
        };
        format!("{}{prefix} {unit}", sig3(scaled))
    } else if unit.is_empty() {
        sig3(v)
    } else {
        format!("{} {unit}", sig3(v))
    }
}

/// Three significant digits, no exponent.
fn sig3(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r.is_finite() => format!("{}×", sig3(r)),
        Some(_) => "n/a (peer 0)".to_string(),
        None => "—".to_string(),
    }
}

/// The text table for one case, as printed.
pub(crate) fn table(c: &CaseResult) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "== {} [{}]", c.title, c.key);
    if !c.method.is_empty() {
        let _ = writeln!(s, "   {}", c.method);
    }
    let _ = writeln!(
        s,
        "   figure: {} ({} is better), median of {}; ratio = uniloop ÷ peer",
        c.unit,
        if c.higher_is_better {
            "higher"
        } else {
            "lower"
        },
        c.reps
    );
    let _ = writeln!(
        s,
        "   {:<44} {:>16} {:>14} {:>11}  details",
        "system", "median", "uniloop ÷ peer", "spread"
    );
    for r in &c.systems {
        let (ratio, spread) = if r.role == Role::Subject {
            ("(uniloop)".to_string(), String::new())
        } else {
            (fmt_ratio(r.ratio), fmt_spread(r.spread))
        };
        let name = match r.role {
            Role::Limit => format!("{} [limit]", r.name),
            _ => r.name.clone(),
        };
        let extras: Vec<String> = r
            .extras
            .iter()
            .map(|(n, v, u)| format!("{n} {}", fmt_value(*v, u)))
            .collect();
        let _ = writeln!(
            s,
            "   {:<44} {:>16} {:>14} {:>11}  {}",
            name,
            fmt_value(r.median, c.unit),
            ratio,
            spread,
            extras.join(", ")
        );
    }
    for g in &c.goals {
        let outcome = match g.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        let measured = g.measured.map_or("—".to_string(), |m| format!("{m:.2}"));
        let _ = writeln!(
            s,
            "   goal: {} — measured {measured} (per repetition {}): {outcome}",
            g.text,
            fmt_spread(g.spread)
        );
    }
    for n in &c.notes {
        let _ = writeln!(s, "   note: {n}");
    }
    for e in &c.errors {
        let _ = writeln!(s, "   ERROR: {e}");
    }
    s
}

/// What the numbers were measured on.
#[derive(Debug)]
pub(crate) struct Machine {
    pub(crate) cores: usize,
    pub(crate) cpu: String,
    pub(crate) kernel: String,
}

impl Machine {
    pub(crate) fn detect() -> Machine {
        let cpu = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".to_string());
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".to_string());
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            kernel,
        }
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "machine: {} cores, {}, Linux {}",
            self.cores, self.cpu, self.kernel
        )
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".to_string()
    }
}

fn json_opt(v: Option<f64>) -> String {
    v.map_or("null".to_string(), json_num)
}

fn to_json(machine: &Machine, cfg: &Config, results: &[CaseResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{{");
    let _ = writeln!(
        s,
        "  \"machine\": {{\"cores\": {}, \"cpu\": {}, \"kernel\": {}}},",
        machine.cores,
        json_str(&machine.cpu),
        json_str(&machine.kernel)
    );
    let _ = writeln!(
        s,
        "  \"quick\": {},\n  \"reps\": {},\n  \"cases\": [",
        cfg.quick, cfg.reps
    );
    for (ci, c) in results.iter().enumerate() {
        let _ = writeln!(s, "    {{");
        let _ = writeln!(s, "      \"case\": {},", json_str(c.id));
        let _ = writeln!(s, "      \"key\": {},", json_str(&c.key));
        let _ = writeln!(s, "      \"title\": {},", json_str(&c.title));
        let _ = writeln!(s, "      \"method\": {},", json_str(&c.method));
        let _ = writeln!(s, "      \"unit\": {},", json_str(c.unit));
        let _ = writeln!(s, "      \"higher_is_better\": {},", c.higher_is_better);
        let _ = writeln!(s, "      \"systems\": [");
        for (si, r) in c.systems.iter().enumerate() {
            let samples: Vec<String> = r.samples.iter().map(|v| json_num(*v)).collect();
            // Each extra with its median and its value per repetition
            // (for ratios between rows of the same repetition).
            let extras: Vec<String> = r
                .extras
                .iter()
                .zip(&r.extra_samples)
                .map(|((n, v, u), per_rep)| {
                    let per_rep: Vec<String> = per_rep.iter().map(|v| json_num(*v)).collect();
                    format!(
                        "{{\"name\": {}, \"value\": {}, \"unit\": {}, \"samples\": [{}]}}",
                        json_str(n),
                        json_num(*v),
                        json_str(u),
                        per_rep.join(", ")
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "        {{\"system\": {}, \"role\": {}, \"median\": {}, \"uniloop_ratio\": {}, \"ratio_min\": {}, \"ratio_max\": {}, \"samples\": [{}], \"extras\": [{}]}}{}",
                json_str(&r.name),
                json_str(r.role.as_str()),
                json_num(r.median),
                json_opt(r.ratio),
                json_opt(r.spread.map(|s| s.0)),
                json_opt(r.spread.map(|s| s.1)),
                samples.join(", "),
                extras.join(", "),
                if si + 1 < c.systems.len() { "," } else { "" }
            );
        }
        let _ = writeln!(s, "      ],");
        let goals: Vec<String> = c
            .goals
            .iter()
            .map(|g| {
                format!(
                    "{{\"goal\": {}, \"measured\": {}, \"min\": {}, \"max\": {}, \"met\": {}}}",
                    json_str(&g.text),
                    json_opt(g.measured),
                    json_opt(g.spread.map(|s| s.0)),
                    json_opt(g.spread.map(|s| s.1)),
                    g.met.map_or("null".to_string(), |m| m.to_string())
                )
            })
            .collect();
        let _ = writeln!(s, "      \"goals\": [{}],", goals.join(", "));
        let notes: Vec<String> = c.notes.iter().map(|n| json_str(n)).collect();
        let _ = writeln!(s, "      \"notes\": [{}],", notes.join(", "));
        let errors: Vec<String> = c.errors.iter().map(|n| json_str(n)).collect();
        let _ = writeln!(s, "      \"errors\": [{}]", errors.join(", "));
        let _ = writeln!(s, "    }}{}", if ci + 1 < results.len() { "," } else { "" });
    }
    let _ = writeln!(s, "  ]\n}}");
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn to_csv(results: &[CaseResult]) -> String {
    let mut s = String::from(
        "case,key,system,role,median,unit,higher_is_better,uniloop_ratio,ratio_min,ratio_max,samples,extras\n",
    );
    for c in results {
        for r in &c.systems {
            let samples: Vec<String> = r.samples.iter().map(|v| format!("{v}")).collect();
            let extras: Vec<String> = r
                .extras
                .iter()
                .map(|(n, v, u)| format!("{n}={v} {u}"))
                .collect();
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(c.id),
                csv_field(&c.key),
                csv_field(&r.name),
                r.role.as_str(),
                r.median,
                csv_field(c.unit),
                c.higher_is_better,
                r.ratio.map_or(String::new(), |x| format!("{x}")),
                r.spread.map_or(String::new(), |x| format!("{}", x.0)),
                r.spread.map_or(String::new(), |x| format!("{}", x.1)),
                csv_field(&samples.join(";")),
                csv_field(&extras.join(";"))
            );
        }
    }
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A horizontal bar per (case, peer): how many times better uniloop is
/// (the ratio, inverted where lower is better), on a log scale around 1.
/// Plain SVG with generic font families: no font files needed.
pub(crate) fn to_svg(machine: &Machine, results: &[CaseResult]) -> String {
    struct Row {
        label: String,
        advantage: f64,
        text: String,
    }
    let mut rows = Vec::new();
    for c in results {
        for r in &c.systems {
            let Some(ratio) = r.ratio else { continue };
            // Other uniloop backends are not peers; a peer that uses 0 bytes
            // has no finite ratio (the tables say so).
            if r.role == Role::Uniloop || ratio <= 0.0 || !ratio.is_finite() {
                continue;
            }
            let advantage = if c.higher_is_better {
                ratio
            } else {
                1.0 / ratio
            };
            let kind = match r.role {
                Role::Limit => " [limit]",
                _ => "",
            };
            rows.push(Row {
                label: format!("{} · {}{}", c.key, r.name, kind),
                advantage,
                text: fmt_ratio(Some(ratio)),
            });
        }
    }
    let row_h = 18.0;
    let label_w = 420.0;
    let plot_w = 440.0;
    let top = 70.0;
    let width = label_w + plot_w + 90.0;
    let height = top + row_h * rows.len() as f64 + 50.0;
    // log2 scale from 1/32 to 32.
    let span = 5.0;
    let x_of = |adv: f64| {
        let l = adv.log2().clamp(-span, span);
        label_w + (l + span) / (2.0 * span) * plot_w
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let _ = writeln!(
        s,
        "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">uniloop vs peers: how many times better uniloop is (log scale; right of 1 = uniloop better)</text>"
    );
    let _ = writeln!(
        s,
        "<text x=\"10\" y=\"38\" fill=\"#555\">{}; label = uniloop ÷ peer as in the tables (for lower-is-better figures the bar shows its inverse)</text>",
        xml(&machine.describe())
    );
    for tick in -5i32..=5 {
        let x = x_of(2f64.powi(tick));
        let label = if tick >= 0 {
            format!("{}×", 1u64 << tick)
        } else {
            format!("1/{}", 1u64 << -tick)
        };
        let stroke = if tick == 0 { "#000" } else { "#ddd" };
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{stroke}\"/>\n<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{label}</text>",
            top - 8.0,
            top + row_h * rows.len() as f64,
            top - 12.0
        );
    }
    let one = x_of(1.0);
    for (i, r) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let x = x_of(r.advantage);
        let (x0, w) = if x >= one {
            (one, x - one)
        } else {
            (x, one - x)
        };
        let fill = if r.advantage >= 1.0 {
            "#3a7d44"
        } else {
            "#c0392b"
        };
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"/>\n<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            label_w - 8.0,
            y + 13.0,
            xml(&r.label),
            y + 3.0,
            w.max(1.0),
            row_h - 6.0,
            label_w + plot_w + 8.0,
            y + 13.0,
            xml(&r.text)
        );
    }
    let _ = writeln!(s, "</svg>");
    s
}

/// The ratio table as Markdown (what the README's Performance section shows).
fn to_markdown(machine: &Machine, cfg: &Config, results: &[CaseResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}; {} run, median of {} interleaved repetitions; a ratio's range is its spread over the \
         repetitions, and a goal is met only if the whole range meets it.\n",
        machine.describe(),
        if cfg.quick { "--quick" } else { "full" },
        cfg.reps
    );
    let _ = writeln!(
        s,
        "| case | system | figure | uniloop ÷ system | goal |\n|---|---|---|---|---|"
    );
    for c in results {
        for r in &c.systems {
            let goal = c
                .goals
                .iter()
                .zip(&goal_systems(c))
                .filter(|(_, name)| **name == r.name)
                .map(|(g, _)| {
                    let outcome = match g.met {
                        Some(true) => "met",
                        Some(false) => "**missed**",
                        None => "not measured",
                    };
                    let m = g.measured.map_or(String::new(), |m| {
                        format!(" ({m:.2}, range {})", fmt_spread(g.spread))
                    });
                    format!("{}: {outcome}{m}", g.short)
                })
                .collect::<Vec<_>>()
                .join("; ");
            let ratio = if r.role == Role::Subject {
                "—".to_string()
            } else {
                format!("{} ({})", fmt_ratio(r.ratio), fmt_spread(r.spread))
            };
            let name = match r.role {
                Role::Limit => format!("{} (limit)", r.name),
                Role::Subject => format!("**{}**", r.name),
                _ => r.name.clone(),
            };
            let extras: Vec<String> = r
                .extras
                .iter()
                .map(|(n, v, u)| format!("{n} {}", fmt_value(*v, u)))
                .collect();
            let figure = if extras.is_empty() {
                fmt_value(r.median, c.unit)
            } else {
                format!("{} ({})", fmt_value(r.median, c.unit), extras.join(", "))
            };
            let _ = writeln!(s, "| {} | {name} | {figure} | {ratio} | {goal} |", c.key);
        }
        for n in c.notes.iter().filter(|n| n.contains("not yet available")) {
            let _ = writeln!(s, "| {} | uniloop::Queue | — | — | {n} |", c.key);
        }
    }
    s
}

/// The system each goal of `c` is about, in goal order.
fn goal_systems(c: &CaseResult) -> Vec<String> {
    c.goals.iter().map(|g| g.system.clone()).collect()
}

/// Writes `results.json`, `results.csv`, `summary.md` and `chart.svg` under `dir`.
pub(crate) fn write_all(
    dir: &Path,
    machine: &Machine,
    cfg: &Config,
    results: &[CaseResult],
) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let files = [
        ("results.json", to_json(machine, cfg, results)),
        ("results.csv", to_csv(results)),
        ("summary.md", to_markdown(machine, cfg, results)),
        ("chart.svg", to_svg(machine, results)),
    ];
    let mut written = Vec::new();
    for (name, body) in files {
        let p = dir.join(name);
        fs::write(&p, body)?;
        written.push(p);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, role: Role, values: &[f64]) -> SystemResult {
        SystemResult::new(name, role, values.iter().map(|&v| Sample::new(v)).collect())
    }

    /// The ratio's spread is per repetition, and a goal counts as met only
    /// when its whole spread meets it.
    #[test]
    fn goals_are_judged_on_the_whole_spread() {
        let case = Case::new("t", "t", "t", "ops/s")
            .goal_at_least("peer", 1.0)
            .goal_pair_at_least("other", "peer", 0.5);
        let systems = vec![
            result("uniloop", Role::Subject, &[110.0, 90.0, 120.0]),
            result("peer", Role::Peer, &[100.0, 100.0, 100.0]),
            result("other", Role::Uniloop, &[60.0, 60.0, 60.0]),
        ];
        let c = CaseResult::new(case, systems, Vec::new(), 3);
        let peer = &c.systems[1];
        assert_eq!(peer.ratio, Some(1.1));
        assert_eq!(peer.spread, Some((0.9, 1.2)));
        // Median 1.10 meets 1.0, but one repetition gave 0.90.
        assert_eq!(
            (c.goals[0].measured, c.goals[0].met),
            (Some(1.1), Some(false))
        );
        assert_eq!(c.goals[1].spread, Some((0.6, 0.6)));
        assert_eq!(c.goals[1].met, Some(true));
        assert!(table(&c).contains("per repetition 0.90–1.20): MISSED"));
    }

    /// A cost goal (`uniloop ÷ peer ≤ max`) is met only if the highest
    /// per-repetition ratio is within it.
    #[test]
    fn cost_goals_are_judged_on_the_highest_ratio() {
        let case = Case::new("t", "t", "t", "ns")
            .lower_is_better()
            .goal_at_most("peer", 1.1);
        let systems = vec![
            result("uniloop", Role::Subject, &[100.0, 100.0, 120.0]),
            result("peer", Role::Peer, &[100.0, 100.0, 100.0]),
        ];
        let c = CaseResult::new(case, systems, Vec::new(), 3);
        assert_eq!(c.goals[0].spread, Some((1.0, 1.2)));
        assert_eq!(
            (c.goals[0].measured, c.goals[0].met),
            (Some(1.0), Some(false))
        );
        let case = Case::new("t", "t", "t", "ns").goal_at_most("peer", 1.25);
        let systems = vec![
            result("uniloop", Role::Subject, &[100.0, 100.0, 120.0]),
            result("peer", Role::Peer, &[100.0, 100.0, 100.0]),
        ];
        let c = CaseResult::new(case, systems, Vec::new(), 3);
        assert_eq!(c.goals[0].met, Some(true));
    }
}
