//! The reward config: a list of `[[rewards]]` tables, each with a `kind`, the fields every
//! reward shares (`name`, `weight`, `timeout_s`, `gate`) and the kind's own options:
//!
//! ```toml
//! [[rewards]]
//! kind = "format"
//! weight = 0.2
//! gate = { penalty = -1.0 }        # a malformed response scores -1.0 in total
//!
//! [[rewards]]
//! kind = "numeric"
//! weight = 1.0
//! rel_tol = 1e-4
//!
//! [[rewards]]
//! kind = "custom"                  # a Rust reward registered in a RewardRegistry
//! name = "my_checker"
//! timeout_s = 10
//! ```
//!
//! Unknown kinds and unknown fields are rejected when parsing; [`RewardSetConfig::validate`]
//! then checks every value and names the offending field (`rewards[2].weight`). The kind names
//! are stable: configs rely on them.
//!

use std::collections::HashSet;
use std::sync::Arc;

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::builtin::choice::{Choice, ChoiceConfig};
use crate::builtin::code_switching::{CodeSwitching, CodeSwitchingConfig};
use crate::builtin::exact_match::{ExactMatch, ExactMatchConfig};
use crate::builtin::format::{Format, FormatConfig};
use crate::builtin::judge::{Judge, JudgeConfig};
use crate::builtin::length::{Length, LengthConfig};
use crate::builtin::math::{MathAnswer, MathConfig};
use crate::builtin::numeric::{NumericConfig, NumericMatch};
use crate::builtin::regex::{RegexConfig, RegexMatch};
use crate::builtin::repetition::{Repetition, RepetitionConfig};
use crate::builtin::tool_call::{ToolCallConfig, ToolCallReward};
use crate::error::{Result, RewardError, finite, non_negative, positive};
use crate::raw::Raw;
use crate::remote::{RemoteConfig, RemoteReward};
use crate::reward::Reward;

/// The kind of a reward and its own options.
///
/// Deserialises from `{"kind": "exact_match" | "numeric" | ..., <options>}`; unknown kinds and
/// unknown options are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RewardConfig {
    /// Normalised string match of the extracted answer.
    ExactMatch(ExactMatchConfig),
    /// Numeric match of the final number, with tolerance.
    Numeric(NumericConfig),
    /// Mathematical equivalence of the final answer, every answer type.
    Math(MathConfig),
    /// Multiple-choice letter match.
    Choice(ChoiceConfig),
    /// A regular expression over the response.
    Regex(RegexConfig),
    /// Thinking / answer tag structure.
    Format(FormatConfig),
    /// DAPO overlong length shaping.
    Length(LengthConfig),
    /// Repeated n-gram penalty.
    Repetition(RepetitionConfig),
    /// Language-consistency penalty.
    CodeSwitching(CodeSwitchingConfig),
    /// Judge-model reward.
    Judge(JudgeConfig),
    /// Tool use of a multi-turn rollout and its final answer.
    ToolCall(ToolCallConfig),
    /// A reward plug-in service over gRPC.
    Remote(RemoteConfig),
    /// A reward registered under the entry's `name` in a [`RewardRegistry`](crate::RewardRegistry).
    Custom(CustomConfig),
}

/// `kind = "custom"` has no options of its own: the entry's `name` picks the registered reward.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomConfig {}

impl RewardConfig {
    /// The serde `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ExactMatch(_) => "exact_match",
            Self::Numeric(_) => "numeric",
            Self::Math(_) => "math",
            Self::Choice(_) => "choice",
            Self::Regex(_) => "regex",
            Self::Format(_) => "format",
            Self::Length(_) => "length",
            Self::Repetition(_) => "repetition",
            Self::CodeSwitching(_) => "code_switching",
            Self::Judge(_) => "judge",
            Self::ToolCall(_) => "tool_call",
            Self::Remote(_) => "remote",
            Self::Custom(_) => "custom",
        }
    }

    /// Whether this is a rule that checks the answer against the prompt's reference
    /// (`exact_match`, `numeric`, `math`, `choice`): the kinds an accuracy is measured by.
    /// Shaping rewards, judges and plug-ins are not.
    pub fn checks_answer(&self) -> bool {
        matches!(
            self,
            Self::ExactMatch(_) | Self::Numeric(_) | Self::Math(_) | Self::Choice(_)
        )
    }

    /// Rejects options outside their domain, naming the field (without the `rewards[i].`
    /// prefix, which [`RewardSetConfig::validate`] adds), and kinds not in this build.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::ExactMatch(c) => c.validate(),
            Self::Numeric(c) => c.validate(),
            Self::Math(c) => c.validate(),
            Self::Choice(c) => c.validate(),
            Self::Regex(c) => c.validate(),
            Self::Format(c) => c.validate(),
            Self::Length(c) => c.validate(),
            Self::Repetition(c) => c.validate(),
            Self::Remote(c) => c.validate(),
            Self::ToolCall(c) => c.validate(),
            Self::CodeSwitching(c) => c.validate(),
            Self::Judge(c) => c.validate(),
            Self::Custom(_) => Ok(()),
        }
    }

    /// Builds a built-in reward. `custom` needs a [`RewardRegistry`](crate::RewardRegistry)
    /// and is refused here, as are the kinds not in this build.
    pub fn build(&self) -> Result<Arc<dyn Reward>> {
        self.validate()?;
        Ok(match self {
            Self::ExactMatch(c) => Arc::new(ExactMatch::new(*c)),
            Self::Numeric(c) => Arc::new(NumericMatch::new(*c)),
            Self::Math(c) => Arc::new(MathAnswer::new(c.clone())),
            Self::Choice(c) => Arc::new(Choice::new(c.clone())),
            Self::Regex(c) => Arc::new(RegexMatch::new(c.clone())?),
            Self::Format(c) => Arc::new(Format::new(c.clone())?),
            Self::Length(c) => Arc::new(Length::new(*c)?),
            Self::Repetition(c) => Arc::new(Repetition::new(*c)?),
            Self::Remote(c) => Arc::new(RemoteReward::new(c.clone())?),
            Self::ToolCall(c) => Arc::new(ToolCallReward::new(*c)),
            Self::CodeSwitching(c) => Arc::new(CodeSwitching::new(c.clone())?),
            Self::Judge(c) => Arc::new(Judge::from_config(c)?),
            Self::Custom(_) => {
                return Err(RewardError::config(
                    "kind",
                    "custom",
                    "custom rewards are built by a `RewardRegistry` that holds them",
                ));
            }
        })
    }
}

/// A gate: when the reward's score is below `min_score`, the sample's *total* is replaced by
/// `penalty`, whatever the other rewards say ("the format must pass, else −1").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// The fixed total of a sample that fails the gate (required: there is no neutral default).
    pub penalty: f64,
    /// The gate passes when the score is at least this [1.0].
    #[serde(default = "one")]
    pub min_score: f64,
}

fn one() -> f64 {
    1.0
}

impl GateConfig {
    /// Rejects non-finite values, naming the field.
    pub fn validate(&self) -> Result<()> {
        finite("gate.penalty", self.penalty)?;
        finite("gate.min_score", self.min_score)
    }
}

/// The default `timeout_s` of a reward, in seconds.
pub const DEFAULT_TIMEOUT_S: f64 = 60.0;

/// One `[[rewards]]` table: the shared fields and the kind with its options.
///
/// Serde form: the shared fields and the kind's fields side by side in one table (see the
/// module doc). Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardEntry {
    /// The name in metrics and logs [the kind]; for `kind = "custom"`, the registered name
    /// (required). Letters, digits, `_`, `-`, `.`; unique within the set.
    pub name: Option<String>,
    /// The weight in the total; finite and `>= 0` (0 = reported but not summed, e.g. a pure
    /// gate) [1.0].
    pub weight: f64,
    /// How long the reward may take for one batch before every sample of the batch is
    /// quarantined, in seconds [default 60].
    pub timeout_s: f64,
    /// An optional gate on this reward's score.
    pub gate: Option<GateConfig>,
    /// The kind and its options.
    pub reward: RewardConfig,
}

impl RewardEntry {
    /// An entry for this kind with weight 1, the default timeout and no gate.
    pub fn new(reward: RewardConfig) -> Self {
        Self {
            name: None,
            weight: 1.0,
            timeout_s: DEFAULT_TIMEOUT_S,
            gate: None,
            reward,
        }
    }

    /// Sets the weight.
    pub fn with_weight(mut self, weight: f64) -> Self {
        self.weight = weight;
        self
    }

    /// Sets the name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the gate.
    pub fn with_gate(mut self, gate: GateConfig) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Sets the timeout, in seconds.
    pub fn with_timeout_s(mut self, timeout_s: f64) -> Self {
        self.timeout_s = timeout_s;
        self
    }

    /// The name in metrics: `name` if set, else the kind.
    pub fn metric_name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.reward.kind())
    }

    /// Rejects bad shared fields and bad options, naming the field (without the `rewards[i].`
    /// prefix).
    pub fn validate(&self) -> Result<()> {
        if let Some(name) = &self.name {
            if !is_valid_name(name) {
                return Err(RewardError::config(
                    "name",
                    format!("{name:?}"),
                    "must be non-empty letters, digits, `_`, `-` or `.`",
                ));
            }
        } else if matches!(self.reward, RewardConfig::Custom(_)) {
            return Err(RewardError::config(
                "name",
                "(missing)",
                "`kind = \"custom\"` needs the `name` the reward was registered under",
            ));
        }
        non_negative("weight", self.weight)?;
        positive("timeout_s", self.timeout_s)?;
        if let Some(gate) = &self.gate {
            gate.validate()?;
        }
        self.reward.validate()
    }
}

impl<'de> Deserialize<'de> for RewardEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        // Read the table losslessly, take the shared fields out, then parse the rest as the
        // kind's options (which rejects anything unknown).
        let mut table = Raw::deserialize(deserializer)?;
        if !matches!(table, Raw::Map(_)) {
            return Err(D::Error::custom("a reward must be a table"));
        }
        fn field<T: serde::de::DeserializeOwned, E: serde::de::Error>(
            table: &mut Raw,
            key: &str,
        ) -> std::result::Result<Option<T>, E> {
            table
                .take(key)
                .map(|v| v.parse::<T>())
                .transpose()
                .map_err(|e| E::custom(format!("field `{key}`: {e}")))
        }
        let name = field::<String, D::Error>(&mut table, "name")?;
        let weight = field::<f64, D::Error>(&mut table, "weight")?.unwrap_or(1.0);
        let timeout_s =
            field::<f64, D::Error>(&mut table, "timeout_s")?.unwrap_or(DEFAULT_TIMEOUT_S);
        let gate = field::<GateConfig, D::Error>(&mut table, "gate")?;
        let kind = table.get_str("kind").unwrap_or("?").to_string();
        let reward = table
            .parse::<RewardConfig>()
            .map_err(|e| D::Error::custom(format!("reward kind `{kind}`: {e}")))?;
        Ok(Self {
            name,
            weight,
            timeout_s,
            gate,
            reward,
        })
    }
}

impl Serialize for RewardEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut table = match serde_json::to_value(&self.reward).map_err(S::Error::custom)? {
            serde_json::Value::Object(table) => table,
            _ => return Err(S::Error::custom("a reward config serialises to a table")),
        };
        if let Some(name) = &self.name {
            table.insert("name".into(), name.clone().into());
        }
        table.insert("weight".into(), self.weight.into());
        table.insert("timeout_s".into(), self.timeout_s.into());
        if let Some(gate) = &self.gate {
            table.insert(
                "gate".into(),
                serde_json::to_value(gate).map_err(S::Error::custom)?,
            );
        }
        table.serialize(serializer)
    }
}

/// Whether `name` is a valid reward name: non-empty letters, digits, `_`, `-`, `.` (it becomes
/// part of metric keys).
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The rewards of a run: `[[rewards]]` in TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardSetConfig {
    /// The rewards, in order; at least one.
    pub rewards: Vec<RewardEntry>,
}

impl RewardSetConfig {
    /// Checks every entry and that metric names are unique; errors name the field as
    /// `rewards[i].field`.
    pub fn validate(&self) -> Result<()> {
        if self.rewards.is_empty() {
            return Err(RewardError::config(
                "rewards",
                "[]",
                "at least one reward is required",
            ));
        }
        let mut names = HashSet::new();
        for (i, entry) in self.rewards.iter().enumerate() {
            entry.validate().map_err(|e| e.at(i))?;
            let name = entry.metric_name();
            if !names.insert(name) {
                return Err(RewardError::config(
                    format!("rewards[{i}].name"),
                    format!("{name:?}"),
                    "is already used by an earlier reward; give each a distinct `name`",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> std::result::Result<RewardSetConfig, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn parses_shared_fields_and_kind_options_side_by_side() {
        let config = parse(
            r#"{"rewards": [
                {"kind": "exact_match", "weight": 0.5, "normalize": false},
                {"kind": "format", "name": "fmt", "gate": {"penalty": -1.0}, "timeout_s": 5},
                {"kind": "custom", "name": "mine"}
            ]}"#,
        )
        .unwrap();
        config.validate().unwrap();
        let [a, b, c] = &config.rewards[..] else {
            panic!()
        };
        assert_eq!(a.weight, 0.5);
        assert_eq!(a.timeout_s, DEFAULT_TIMEOUT_S);
        assert_eq!(
            a.reward,
            RewardConfig::ExactMatch(ExactMatchConfig {
                normalize: false,
                ..ExactMatchConfig::default()
            })
        );
        assert_eq!(b.metric_name(), "fmt");
        assert_eq!(b.timeout_s, 5.0);
        assert_eq!(
            b.gate,
            Some(GateConfig {
                penalty: -1.0,
                min_score: 1.0
            })
        );
        assert_eq!(c.reward, RewardConfig::Custom(CustomConfig {}));
        assert_eq!(c.weight, 1.0);
    }

    #[test]
    fn unknown_kinds_and_fields_are_rejected_when_parsing() {
        let err = parse(r#"{"rewards": [{"kind": "exact"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `exact`"), "{err}");
        let err = parse(r#"{"rewards": [{"kind": "numeric", "tolerance": 0.1}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `tolerance`"), "{err}");
        let err = parse(r#"{"rewards": [{"kind": "custom", "name": "x", "params": 1}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `params`"), "{err}");
        let err = parse(r#"{"rewards": [{"kind": "format", "gate": {"penalty": -1, "x": 1}}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("field `gate`") && err.contains("unknown field `x`"),
            "{err}"
        );
        let err = parse(r#"{"rewards": [{"weight": 1}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `kind`"), "{err}");
        let err = parse(r#"{"rewards": [{"kind": "format", "weight": "high"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `weight`"), "{err}");
        let err = parse(r#"{"rewards": [], "extra": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `extra`"), "{err}");
    }

    #[test]
    fn validate_names_the_bad_field_with_its_index() {
        let cases = [
            (r#"{"kind": "format", "weight": -1}"#, "rewards[1].weight"),
            (
                r#"{"kind": "format", "timeout_s": 0}"#,
                "rewards[1].timeout_s",
            ),
            (r#"{"kind": "format", "name": "a b"}"#, "rewards[1].name"),
            (r#"{"kind": "regex", "pattern": "("}"#, "rewards[1].pattern"),
            (
                r#"{"kind": "numeric", "abs_tol": -1}"#,
                "rewards[1].abs_tol",
            ),
            (r#"{"kind": "custom"}"#, "rewards[1].name"),
            (r#"{"kind": "exact_match"}"#, "rewards[1].name"), // duplicate of rewards[0]
        ];
        for (entry, field) in cases {
            let json = format!(r#"{{"rewards": [{{"kind": "exact_match"}}, {entry}]}}"#);
            let err = parse(&json).unwrap().validate().unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("invalid `{field}`")),
                "{entry}: {err}"
            );
        }
        let empty = parse(r#"{"rewards": []}"#).unwrap().validate().unwrap_err();
        assert!(empty.to_string().starts_with("invalid `rewards`"));
    }

    #[test]
    fn serialises_back_to_the_same_table() {
        let config = parse(
            r#"{"rewards": [
                {"kind": "length", "max_len": 100, "overlong_buffer": 10, "weight": 1},
                {"kind": "regex", "pattern": "x", "name": "has_x",
                 "gate": {"penalty": -2, "min_score": 0.5}}
            ]}"#,
        )
        .unwrap();
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(parse(&json).unwrap(), config);
    }

    #[test]
    fn gate_values_must_be_finite() {
        let gate = |penalty, min_score| GateConfig { penalty, min_score }.validate();
        assert!(gate(-1.0, 1.0).is_ok());
        let err = gate(f64::NAN, 1.0).unwrap_err().to_string();
        assert!(err.starts_with("invalid `gate.penalty`"), "{err}");
        let err = gate(0.0, f64::INFINITY).unwrap_err().to_string();
        assert!(err.starts_with("invalid `gate.min_score`"), "{err}");
    }

    #[test]
    fn custom_is_not_built_without_a_registry() {
        let err = RewardConfig::Custom(CustomConfig {}).build().err().unwrap();
        assert!(err.to_string().contains("RewardRegistry"));
    }

    #[test]
    fn answer_rules_are_the_reference_checking_kinds() {
        let config = parse(
            r#"{"rewards": [
                {"kind": "format", "gate": {"penalty": -1.0}},
                {"kind": "length", "max_len": 64, "overlong_buffer": 16},
                {"kind": "numeric", "name": "num"},
                {"kind": "exact_match"},
                {"kind": "math"},
                {"kind": "choice"},
                {"kind": "regex", "pattern": "^[0-9]$"}
            ]}"#,
        )
        .unwrap();
        let rules: Vec<bool> = config
            .rewards
            .iter()
            .map(|r| r.reward.checks_answer())
            .collect();
        assert_eq!(rules, [false, false, true, true, true, true, false]);
    }
}
