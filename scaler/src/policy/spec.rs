//! Parsing of policy specs such as `fixed:20m`, `hybrid-histogram:range=2h` or
//! `reactive:target=1:stable=60s`, and building the matching [`PolicyFactory`].

use super::{
    FixedKeepAlive, HybridConfig, HybridHistogram, Millis, NoKeepAlive, PolicyError, PolicyFactory,
    Predictive, PredictiveConfig, ReactiveConfig, ReactiveKpa,
};

/// A parsed policy spec: `name[:value][:key=value]...`.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySpec {
    /// The spec exactly as given (used as the policy's label in reports).
    pub label: String,
    /// Policy name.
    pub name: String,
    /// A bare positional value (as in `fixed:20m`), if any.
    pub value: Option<String>,
    /// `key=value` parameters in order.
    pub params: Vec<(String, String)>,
}

impl PolicySpec {
    /// Parses one spec. Parameters are separated by `:`.
    pub fn parse(s: &str) -> Result<Self, PolicyError> {
        let label = s.trim().to_string();
        let mut parts = label.split(':');
        let name = parts.next().unwrap_or_default().trim().to_string();
        if name.is_empty() {
            return Err(PolicyError::UnknownPolicy(label));
        }
        let mut value = None;
        let mut params = Vec::new();
        for p in parts {
            let p = p.trim();
            if let Some((k, v)) = p.split_once('=') {
                params.push((k.trim().to_string(), v.trim().to_string()));
            } else if value.is_none() && !p.is_empty() {
                value = Some(p.to_string());
            } else {
                return Err(PolicyError::BadParameter {
                    policy: label.clone(),
                    key: p.to_string(),
                    reason: "expected key=value".into(),
                });
            }
        }
        Ok(Self {
            label,
            name,
            value,
            params,
        })
    }

    /// Parses a comma-separated list of specs.
    pub fn parse_list(s: &str) -> Result<Vec<Self>, PolicyError> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(Self::parse)
            .collect()
    }

    fn bad(&self, key: &str, reason: impl Into<String>) -> PolicyError {
        PolicyError::BadParameter {
            policy: self.label.clone(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    /// Fails on any parameter key not in `known`.
    pub fn check_keys(&self, known: &[&str]) -> Result<(), PolicyError> {
        for (k, _) in &self.params {
            if !known.contains(&k.as_str()) {
                return Err(self.bad(k, format!("unknown key (known: {})", known.join(", "))));
            }
        }
        Ok(())
    }

    /// The raw value of parameter `key`, if given.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A duration parameter (`30s`, `10m`, `4h`, `1500ms`), or `default`.
    pub fn duration_ms(&self, key: &str, default: Millis) -> Result<Millis, PolicyError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_duration_ms(v).map_err(|r| self.bad(key, r)),
        }
    }

    /// A float parameter within `[lo, hi]`, or `default`.
    pub fn float(&self, key: &str, default: f64, lo: f64, hi: f64) -> Result<f64, PolicyError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => {
                let x: f64 = v
                    .parse()
                    .map_err(|_| self.bad(key, format!("`{v}` is not a number")))?;
                if !(lo..=hi).contains(&x) {
                    return Err(self.bad(key, format!("{x} is outside [{lo}, {hi}]")));
                }
                Ok(x)
            }
        }
    }

    /// Builds the factory for this spec.
    pub fn build(&self) -> Result<Box<dyn PolicyFactory>, PolicyError> {
        match self.name.as_str() {
            "none" => {
                self.check_keys(&[])?;
                if self.value.is_some() {
                    return Err(self.bad("value", "`none` takes no value"));
                }
                Ok(Box::new(NoKeepAlive::new(&self.label)))
            }
            "fixed" => {
                self.check_keys(&["keepalive"])?;
                let ka = match &self.value {
                    Some(v) => parse_duration_ms(v).map_err(|r| self.bad("value", r))?,
                    None => self.duration_ms("keepalive", 10 * 60_000)?,
                };
                Ok(Box::new(FixedKeepAlive::new(&self.label, ka)))
            }
            "hybrid-histogram" | "hybrid" => {
                self.check_keys(&["range", "cv", "oob", "min-samples"])?;
                let d = HybridConfig::default();
                let range = match &self.value {
                    Some(v) => parse_duration_ms(v).map_err(|r| self.bad("value", r))?,
                    None => self.duration_ms("range", d.range_ms)?,
                };
                if range < 60_000 {
                    return Err(self.bad("range", "must be at least 1m"));
                }
                let cfg = HybridConfig {
                    range_ms: range,
                    cv_threshold: self.float("cv", d.cv_threshold, 0.0, 1e6)?,
                    oob_threshold: self.float("oob", d.oob_threshold, 0.0, 1.0)?,
                    min_samples: self.float("min-samples", d.min_samples as f64, 1.0, 1e9)?
                        as usize,
                    ..d
                };
                Ok(Box::new(HybridHistogram::new(&self.label, cfg)))
            }
            "reactive" => {
                self.check_keys(&[
                    "target",
                    "stable",
                    "panic",
                    "panic-threshold",
                    "tick",
                    "grace",
                ])?;
                let d = ReactiveConfig::default();
                let cfg = ReactiveConfig {
                    target: self.float("target", d.target, 0.01, 1e6)?,
                    stable_ms: self.duration_ms("stable", d.stable_ms)?,
                    panic_ms: self.duration_ms("panic", d.panic_ms)?,
                    panic_threshold: self.float("panic-threshold", d.panic_threshold, 1.0, 1e3)?,
                    tick_ms: self.duration_ms("tick", d.tick_ms)?,
                    grace_ms: self.duration_ms("grace", d.grace_ms)?,
                    ..d
                };
                if cfg.tick_ms == 0 || cfg.panic_ms < cfg.tick_ms || cfg.stable_ms < cfg.panic_ms {
                    return Err(self.bad("tick", "need 0 < tick <= panic <= stable"));
                }
                Ok(Box::new(ReactiveKpa::new(&self.label, cfg)))
            }
            "predictive" => {
                self.check_keys(&[
                    "cost",
                    "tick",
                    "actuation",
                    "min",
                    "max",
                    "step-up",
                    "step-down",
                    "margin",
                    "history",
                    "budget",
                ])?;
                let d = PredictiveConfig::default();
                let cost = match &self.value {
                    Some(v) => v
                        .parse::<f64>()
                        .map_err(|_| self.bad("value", format!("`{v}` is not a number")))?,
                    None => self.float("cost", d.cost_gb_s, 1e-3, 1e9)?,
                };
                if !(1e-3..=1e9).contains(&cost) {
                    return Err(self.bad("cost", "must be in [0.001, 1e9] GB·s"));
                }
                let cfg = PredictiveConfig {
                    cost_gb_s: cost,
                    tick_ms: self.duration_ms("tick", d.tick_ms)?,
                    actuation_ms: self.duration_ms("actuation", d.actuation_ms)?,
                    min_instances: self.float("min", d.min_instances as f64, 0.0, 1e6)? as u32,
                    max_instances: self.float("max", d.max_instances as f64, 1.0, 1e6)? as u32,
                    max_step_up: self.float("step-up", d.max_step_up as f64, 1.0, 1e6)? as u32,
                    max_step_down: self.float("step-down", d.max_step_down as f64, 1.0, 1e6)?
                        as u32,
                    margin: self.float("margin", d.margin, 0.0, 1.0)?,
                    history: self.float("history", d.history as f64, 2.0, 1024.0)? as usize,
                    budget_gb: if self.get("budget").is_some() {
                        Some(self.float("budget", 0.0, 1e-3, 1e9)?)
                    } else {
                        None
                    },
                    ..d
                };
                if cfg.tick_ms == 0 {
                    return Err(self.bad("tick", "must be positive"));
                }
                if cfg.min_instances > cfg.max_instances {
                    return Err(self.bad("min", "must not exceed max"));
                }
                Ok(Box::new(Predictive::new(&self.label, cfg)))
            }
            _ => Err(PolicyError::UnknownPolicy(self.label.clone())),
        }
    }
}

/// Parses `1500ms`, `30s`, `10m`, `4h` or `1d` into milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<Millis, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{s}` has no unit (use ms, s, m, h or d)"))?;
    let (num, unit) = s.split_at(split);
    let x: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` does not start with a number"))?;
    let mult = match unit {
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" | "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => {
            return Err(format!(
                "`{s}`: unknown unit `{unit}` (use ms, s, m, h or d)"
            ))
        }
    };
    let ms = x * mult;
    if !ms.is_finite() || !(0.0..=1e15).contains(&ms) {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(ms.round() as Millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration_ms("1500ms"), Ok(1500));
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("20m"), Ok(1_200_000));
        assert_eq!(parse_duration_ms("4h"), Ok(14_400_000));
        assert!(parse_duration_ms("10").is_err());
        assert!(parse_duration_ms("10y").is_err());
    }

    #[test]
    fn parses_specs_and_lists() {
        let l = PolicySpec::parse_list(
            "fixed,fixed:20m,reactive:target=2:stable=30s,predictive,predictive:cost=50:tick=5s",
        )
        .unwrap();
        assert_eq!(l.len(), 5);
        assert_eq!(l[1].value.as_deref(), Some("20m"));
        assert_eq!(l[2].get("target"), Some("2"));
        assert_eq!(l[2].label, "reactive:target=2:stable=30s");
        for s in &l {
            assert!(s.build().is_ok(), "{}", s.label);
        }
    }

    #[test]
    fn rejects_unknown_policies_and_keys() {
        assert!(matches!(
            PolicySpec::parse("lru").unwrap().build(),
            Err(PolicyError::UnknownPolicy(_))
        ));
        assert!(matches!(
            PolicySpec::parse("fixed:keepalive=5m:bogus=1")
                .unwrap()
                .build(),
            Err(PolicyError::BadParameter { .. })
        ));
        assert!(PolicySpec::parse("fixed:ten").unwrap().build().is_err());
    }
}
