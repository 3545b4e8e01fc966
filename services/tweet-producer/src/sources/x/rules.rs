//! The filtered stream's rules, made exactly the configured ones at start.
//!
//! Why rules are synced, not added: the filtered stream delivers whatever matches the rules
//! stored on X's side for the app, and they outlive the process. Adding the configured rules at
//! every start would pile up old ones (and each delivered post is billed), so at start the
//! producer reads them (`GET /2/tweets/search/stream/rules`, every page) and makes them
//! exactly the configured set: one `POST /2/tweets/search/stream/rules` with
//! `{"delete":{"ids":[…]}}` for the rules that are not configured (or differ in tag), then one
//! with `{"add":[{"value","tag"}…]}` for the configured ones that are missing; none when they
//! already match ([`diff_rules`], pure). A rule X rejects (bad syntax, too long, over the
//! plan's limits) stops the source with X's reason.

use serde::{Deserialize, Serialize};

use super::api::{XConfig, json, send};
use super::backoff::Failure;
use crate::sources::contract::SourceContext;
use crate::sources::live::Ended;

/// At most this many pages of rules are read (X allows at most 1,000 rules per page).
const MAX_RULE_PAGES: usize = 100;

/// A rule as X returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Rule {
    pub id: String,
    pub value: String,
    #[serde(default)]
    pub tag: Option<String>,
}

/// A rule to add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewRule {
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// What makes the server's rules equal to the configured ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleChanges {
    /// Ids of rules to delete, in the server's order.
    pub delete: Vec<String>,
    /// Rules to add, in the configured order.
    pub add: Vec<NewRule>,
}

/// The changes that turn `current` into `wanted` (values, each with `tag`). A rule is kept
/// only if its value and tag are both as configured (X refuses two rules with one value, so a
/// rule whose tag changed is deleted and added again).
pub fn diff_rules(current: &[Rule], wanted: &[String], tag: Option<&str>) -> RuleChanges {
    let mut kept: Vec<&str> = Vec::new();
    let mut changes = RuleChanges::default();
    for rule in current {
        let same_tag = rule.tag.as_deref().filter(|t| !t.is_empty()) == tag;
        let value = rule.value.as_str();
        if same_tag && wanted.iter().any(|w| w == value) && !kept.contains(&value) {
            kept.push(value);
        } else {
            changes.delete.push(rule.id.clone());
        }
    }
    for value in wanted {
        if !kept.contains(&value.as_str()) {
            changes.add.push(NewRule {
                value: value.clone(),
                tag: tag.map(str::to_owned),
            });
        }
    }
    changes
}

#[derive(Debug, Deserialize)]
struct RulesPage {
    #[serde(default)]
    data: Vec<Rule>,
    #[serde(default)]
    meta: Option<RulesMeta>,
}

#[derive(Debug, Deserialize)]
struct RulesMeta {
    #[serde(default)]
    next_token: Option<String>,
}

/// The answer to an add or delete.
#[derive(Debug, Deserialize)]
struct Changed {
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct AddBody<'a> {
    add: &'a [NewRule],
}

#[derive(Debug, Serialize)]
struct DeleteBody<'a> {
    delete: DeleteIds<'a>,
}

#[derive(Debug, Serialize)]
struct DeleteIds<'a> {
    ids: &'a [String],
}

/// Makes the server's rules the configured ones.
pub async fn sync_rules(
    config: &XConfig,
    client: &reqwest::Client,
    ctx: &SourceContext,
) -> Result<(), Ended<Failure>> {
    let url = format!("{}/2/tweets/search/stream/rules", config.base_url);
    let mut current: Vec<Rule> = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_RULE_PAGES {
        let mut request = client.get(&url);
        if let Some(token) = &token {
            request = request.query(&[("pagination_token", token)]);
        }
        let response = send(request, "reading the stream rules", config, ctx).await?;
        let page: RulesPage = json(response, "reading the stream rules").await?;
        current.extend(page.data);
        token = page.meta.and_then(|m| m.next_token);
        if token.is_none() {
            break;
        }
    }
    let changes = diff_rules(&current, &config.rules, config.tag.as_deref());
    if !changes.delete.is_empty() {
        let body = DeleteBody {
            delete: DeleteIds {
                ids: &changes.delete,
            },
        };
        let errors = change(config, client, ctx, &url, &body, "deleting stream rules").await?;
        if let Some(errors) = errors {
            return Err(Ended::Fatal(anyhow::anyhow!(
                "X did not delete stream rules {:?}: {errors}",
                changes.delete
            )));
        }
    }
    if !changes.add.is_empty() {
        let body = AddBody { add: &changes.add };
        let errors = change(config, client, ctx, &url, &body, "adding stream rules").await?;
        if let Some(errors) = errors {
            return Err(Ended::Fatal(anyhow::anyhow!(
                "X refused stream rules (source.x.rules): {errors}"
            )));
        }
    }
    tracing::info!(
        rules = config.rules.len(),
        deleted = changes.delete.len(),
        added = changes.add.len(),
        "X stream rules in sync"
    );
    Ok(())
}

/// Posts one change to the rules; `Some`: the errors X answered with, as JSON.
async fn change(
    config: &XConfig,
    client: &reqwest::Client,
    ctx: &SourceContext,
    url: &str,
    body: &impl Serialize,
    what: &str,
) -> Result<Option<String>, Ended<Failure>> {
    let response = send(client.post(url).json(body), what, config, ctx).await?;
    let changed: Changed = json(response, what).await?;
    Ok((!changed.errors.is_empty())
        .then(|| serde_json::to_string(&changed.errors).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, value: &str, tag: Option<&str>) -> Rule {
        Rule {
            id: id.into(),
            value: value.into(),
            tag: tag.map(str::to_owned),
        }
    }

    fn wanted(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn rules_are_diffed_by_value_and_tag() {
        let current = [
            rule("1", "cat has:images", Some("cats with images")),
            rule("2", "#rust", Some("t")),
            rule("3", "#kafka", None),
            rule("4", "#rust", Some("t")),
        ];
        let changes = diff_rules(&current, &wanted(&["#rust", "#kafka", "#new"]), Some("t"));
        assert_eq!(changes.delete, ["1", "3", "4"]);
        assert_eq!(
            changes.add,
            [
                NewRule {
                    value: "#kafka".into(),
                    tag: Some("t".into())
                },
                NewRule {
                    value: "#new".into(),
                    tag: Some("t".into())
                },
            ]
        );
        let in_sync = [rule("2", "#rust", Some("t")), rule("5", "#new", Some("t"))];
        assert_eq!(
            diff_rules(&in_sync, &wanted(&["#new", "#rust"]), Some("t")),
            RuleChanges::default()
        );
        assert_eq!(
            diff_rules(&[rule("6", "x", Some(""))], &wanted(&["x"]), None),
            RuleChanges::default(),
            "an empty tag is no tag"
        );
        assert_eq!(
            serde_json::to_string(&NewRule {
                value: "x".into(),
                tag: None
            })
            .expect("json"),
            r#"{"value":"x"}"#
        );
    }
}
