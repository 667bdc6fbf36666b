//! Small argument types with their own parsing, so a bad flag fails before anything starts.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::policy::naming::check_dns1123_label;

/// A cluster id: a DNS-1123 label (it becomes part of twin namespace names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterId(pub String);

impl FromStr for ClusterId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        check_dns1123_label(s).map_err(|e| format!("cluster id {s:?} {e}"))?;
        Ok(ClusterId(s.to_owned()))
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A container image reference (`name[:tag][@digest]`, with an optional registry): checked
/// only for what would break the manifest or the pull, since registries differ in the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRef(pub String);

impl FromStr for ImageRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("the image reference is empty".to_owned());
        }
        if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("image {s:?} contains {c:?}"));
        }
        if s.starts_with(['/', ':', '@']) || s.ends_with(['/', ':', '@']) {
            return Err(format!(
                "image {s:?} is not of the form [registry/]name[:tag][@digest]"
            ));
        }
        Ok(ImageRef(s.to_owned()))
    }
}

/// A duration written like `500ms`, `10s`, `2m` or `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| {
            format!("invalid duration {s:?}: expected a number and a unit, e.g. 10s")
        })?;
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => {
                return Err(format!(
                    "invalid duration {s:?}: the unit must be ms, s, m or h"
                ))
            }
        };
        Ok(HumanDuration(d))
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            "500ms".parse::<HumanDuration>().unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!(
            "10s".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(10)
        );
        assert_eq!(
            "2m".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(120)
        );
        assert_eq!(
            "1h".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(3600)
        );
        for bad in ["", "s", "10", "10x", "-1s", "1.5s"] {
            assert!(bad.parse::<HumanDuration>().is_err(), "{bad}");
        }
    }

    #[test]
    fn image_references() {
        for good in [
            "nsoffload:0.1.0",
            "registry.example.com:5000/team/nsoffload:1.2",
            "ghcr.io/x/nsoffload@sha256:0123",
        ] {
            assert!(good.parse::<ImageRef>().is_ok(), "{good}");
        }
        for bad in ["", "a b", "nsoffload:", "/nsoffload", "x\ty"] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cluster_ids() {
        assert!("home-1".parse::<ClusterId>().is_ok());
        assert!("Home".parse::<ClusterId>().is_err());
        assert!("".parse::<ClusterId>().is_err());
    }
}
