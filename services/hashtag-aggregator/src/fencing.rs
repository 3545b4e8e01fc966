//! Two live instances with one `aggregator.instance_id`, told apart from other failures.
//!
//! An instance's transactional producer is `<group_id>-<instance_id>`. A second instance
//! started with the same id (three aggregators started by hand on one host all default to
//! `$HOSTNAME`) initialises the same `transactional.id`: the transaction coordinator bumps the
//! producer epoch and the first instance is fenced. What the first one then sees depends on
//! where its next commit meets it: `PRODUCER_FENCED` / `INVALID_PRODUCER_EPOCH` (librdkafka
//! also reports its own `_FENCED`) from the transaction coordinator, or, when the second
//! instance joined the consumer group first, `ILLEGAL_GENERATION` ("Specified group
//! generation id is not valid") or `UNKNOWN_MEMBER_ID` from the group coordinator at
//! `send_offsets_to_transaction`. Under a supervisor each restart fences the other back, a
//! loop whose log never said why. [`Instance::explain`] puts the reason and the remedy in
//! front of the error the engine returned, which stays in the message as it was.
//!
//! The group-coordinator errors are also what a zombie sees (an instance paused past the
//! session timeout, ARCHITECTURE.md "Zombies"), so for them the message names both causes.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::settings::Settings;

/// How Kafka told this instance that someone else took over its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fencing {
    /// The transaction coordinator fenced this producer: another producer initialised the
    /// same `transactional.id` (`PRODUCER_FENCED`, `INVALID_PRODUCER_EPOCH`, librdkafka's
    /// `_FENCED`). Only another instance with the same instance id does that.
    Producer,
    /// With static membership, another member joined with the same `group.instance.id`
    /// (`FENCED_INSTANCE_ID`): the same instance id, too.
    GroupInstance,
    /// The group coordinator refused offsets of a stale generation (`ILLEGAL_GENERATION`,
    /// `UNKNOWN_MEMBER_ID`): another instance with the same id, or a zombie.
    Generation,
}

/// The fencing behind `error`, if any: the Kafka error codes in its chain, else (an error
/// that reached it as text) the names and messages librdkafka gives them.
pub fn classify(error: &anyhow::Error) -> Option<Fencing> {
    let mut found: Option<Fencing> = None;
    for cause in error.chain() {
        let by_code = cause
            .downcast_ref::<KafkaError>()
            .and_then(KafkaError::rdkafka_error_code)
            .and_then(of_code);
        let by_text = of_text(&cause.to_string());
        for kind in [by_code, by_text].into_iter().flatten() {
            found = match found {
                // The definite kinds win over the ambiguous one.
                Some(definite @ (Fencing::Producer | Fencing::GroupInstance)) => Some(definite),
                _ => Some(kind),
            };
        }
    }
    found
}

fn of_code(code: RDKafkaErrorCode) -> Option<Fencing> {
    match code {
        RDKafkaErrorCode::ProducerFenced
        | RDKafkaErrorCode::InvalidProducerEpoch
        | RDKafkaErrorCode::Fenced => Some(Fencing::Producer),
        RDKafkaErrorCode::FencedInstanceId => Some(Fencing::GroupInstance),
        RDKafkaErrorCode::IllegalGeneration | RDKafkaErrorCode::UnknownMemberId => {
            Some(Fencing::Generation)
        }
        _ => None,
    }
}

fn of_text(text: &str) -> Option<Fencing> {
    let lower = text.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    if any(&[
        "producerfenced",
        "producer_fenced",
        "invalidproducerepoch",
        "invalid_producer_epoch",
        "producer has been fenced",
        "fenced by a newer instance",
        "fenced producer",
    ]) {
        Some(Fencing::Producer)
    } else if any(&["fencedinstanceid", "fenced_instance_id"]) {
        Some(Fencing::GroupInstance)
    } else if any(&[
        "specified group generation id is not valid",
        "illegalgeneration",
        "illegal_generation",
        "unknownmemberid",
        "unknown_member_id",
    ]) {
        Some(Fencing::Generation)
    } else {
        None
    }
}

/// This instance's identity, as the settings give it, for the message.
#[derive(Debug, Clone)]
pub struct Instance {
    /// `aggregator.instance_id` as set, or `None` when it fell back to `$HOSTNAME`.
    configured: Option<String>,
    id: String,
    group_id: String,
}

impl Instance {
    pub fn of(settings: &Settings) -> Instance {
        let configured = settings
            .aggregator
            .instance_id
            .clone()
            .filter(|s| !s.is_empty());
        let id = match &configured {
            Some(id) => id.clone(),
            None => std::env::var("HOSTNAME")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "<random>".to_owned()),
        };
        Instance {
            configured,
            id,
            group_id: settings.aggregator.group_id.clone(),
        }
    }

    /// `error` with, in front, what a fencing means here and how to fix it; any other error
    /// as it is.
    pub fn explain(&self, error: anyhow::Error) -> anyhow::Error {
        match classify(&error) {
            Some(kind) => {
                let message = self.message(kind);
                error.context(message)
            }
            None => error,
        }
    }

    /// The message for `kind`: the setting, its value, and how to give each instance its own.
    pub fn message(&self, kind: Fencing) -> String {
        let Instance {
            configured,
            id,
            group_id,
        } = self;
        let origin = match configured {
            Some(_) => String::new(),
            None => " (not set: it defaults to $HOSTNAME, the same for every instance on one host)"
                .to_owned(),
        };
        let remedy = "give each instance its own aggregator.instance_id, stable across its \
                      restarts (TRENDS__AGGREGATOR__INSTANCE_ID; on one host e.g. \
                      <hostname>-<metrics port>, with systemd %H-%i; on Kubernetes the pod's \
                      name); restarting this instance unchanged fences the other one in turn";
        match kind {
            Fencing::Producer => format!(
                "another instance with the same aggregator.instance_id {id:?}{origin} took over: \
                 it started with the same transactional.id {group_id}-{id} and Kafka fenced this \
                 one; {remedy}"
            ),
            Fencing::GroupInstance => format!(
                "another instance with the same aggregator.instance_id {id:?}{origin} took over: \
                 it joined consumer group {group_id} with the same group.instance.id (static \
                 membership) and the group fenced this one; {remedy}"
            ),
            Fencing::Generation => format!(
                "the consumer group {group_id} refused this instance's offsets (a stale group \
                 generation): another instance with the same aggregator.instance_id {id:?}{origin} \
                 took over (it started with the same transactional.id {group_id}-{id}), or this \
                 instance was out of the group (paused longer than \
                 aggregator.session_timeout_ms); if instances keep stopping each other in turns, \
                 {remedy}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trends_common::config::Load as _;

    fn instance(pairs: &[(&str, &str)]) -> Instance {
        Instance::of(&Settings::load_from_pairs(pairs).expect("settings"))
    }

    #[test]
    fn kafka_codes_in_the_chain_are_classified() {
        for (code, kind) in [
            (RDKafkaErrorCode::ProducerFenced, Some(Fencing::Producer)),
            (
                RDKafkaErrorCode::InvalidProducerEpoch,
                Some(Fencing::Producer),
            ),
            (RDKafkaErrorCode::Fenced, Some(Fencing::Producer)),
            (
                RDKafkaErrorCode::FencedInstanceId,
                Some(Fencing::GroupInstance),
            ),
            (
                RDKafkaErrorCode::IllegalGeneration,
                Some(Fencing::Generation),
            ),
            (RDKafkaErrorCode::UnknownMemberId, Some(Fencing::Generation)),
            (RDKafkaErrorCode::RequestTimedOut, None),
        ] {
            let error = anyhow::Error::from(KafkaError::MessageProduction(code))
                .context("send offsets to transaction");
            assert_eq!(classify(&error), kind, "{code:?}");
        }
    }

    #[test]
    fn the_messages_as_text_are_classified_and_a_definite_kind_wins() {
        let seen = anyhow::anyhow!(
            "Transaction error: Failed to commit offsets to transaction on coordinator \
             localhost:9092: Broker: Specified group generation id is not valid"
        )
        .context("send offsets to transaction");
        assert_eq!(classify(&seen), Some(Fencing::Generation));
        let both = anyhow::anyhow!(
            "Broker: Producer attempted to produce with an old epoch (INVALID_PRODUCER_EPOCH)"
        )
        .context("Specified group generation id is not valid");
        assert_eq!(classify(&both), Some(Fencing::Producer));
        let other = anyhow::anyhow!("partitions [1] were lost (session timeout?)");
        assert_eq!(classify(&other), None);
        let explained = instance(&[]).explain(other);
        assert_eq!(
            explained.to_string(),
            "partitions [1] were lost (session timeout?)"
        );
    }

    #[test]
    fn the_message_names_the_setting_its_value_and_the_remedy() {
        let one = instance(&[
            ("TRENDS__AGGREGATOR__INSTANCE_ID", "host-a"),
            ("TRENDS__AGGREGATOR__GROUP_ID", "counting"),
        ]);
        for kind in [
            Fencing::Producer,
            Fencing::GroupInstance,
            Fencing::Generation,
        ] {
            let message = one.message(kind);
            for part in [
                "another instance with the same aggregator.instance_id \"host-a\"",
                "took over",
                "give each instance its own aggregator.instance_id",
                "TRENDS__AGGREGATOR__INSTANCE_ID",
                "%H-%i",
                "pod's name",
            ] {
                assert!(message.contains(part), "{kind:?}: {part} in {message}");
            }
            assert!(!message.contains("$HOSTNAME"), "{message}");
        }
        assert!(
            one.message(Fencing::Producer)
                .contains("transactional.id counting-host-a")
        );
        let error = one.explain(
            anyhow::Error::from(KafkaError::MessageProduction(
                RDKafkaErrorCode::ProducerFenced,
            ))
            .context("commit transaction"),
        );
        let text = format!("{error:#}");
        assert!(text.starts_with("another instance with the same"), "{text}");
        assert!(
            text.contains("commit transaction"),
            "the cause stays: {text}"
        );
        let defaulted = instance(&[]);
        assert!(
            defaulted
                .message(Fencing::Producer)
                .contains("defaults to $HOSTNAME"),
            "{defaulted:?}"
        );
    }
}
