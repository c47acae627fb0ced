//! Tag filters, RocketMQ style: `*` (every message), `created`, `created || refunded`.
//! A filter is stored as one subscription row per tag so that publish matches groups with
//! an indexed lookup instead of evaluating expressions.

use crate::error::{Error, Result};
use crate::validate;

/// The stored form of "every tag"; message tags can never be `*`.
pub const ALL_TAGS: &str = "*";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagFilter {
    All,
    /// Sorted and deduplicated.
    AnyOf(Vec<String>),
}

impl TagFilter {
    pub fn parse(expr: &str) -> Result<Self> {
        let trimmed = expr.trim();
        if trimmed == ALL_TAGS {
            return Ok(TagFilter::All);
        }
        if trimmed.is_empty() {
            return Err(Error::invalid(
                "tag filter is empty; use \"*\" for every tag",
            ));
        }
        let mut tags = Vec::new();
        for part in trimmed.split("||") {
            let part = part.trim();
            if part == ALL_TAGS {
                return Err(Error::invalid(format!(
                    "tag filter {expr:?} mixes \"*\" with tags; use \"*\" alone"
                )));
            }
            validate::tag(part).map_err(|e| Error::invalid(format!("tag filter {expr:?}: {e}")))?;
            tags.push(part.to_owned());
        }
        tags.sort();
        tags.dedup();
        Ok(TagFilter::AnyOf(tags))
    }

    pub fn matches(&self, tag: Option<&str>) -> bool {
        match self {
            TagFilter::All => true,
            TagFilter::AnyOf(tags) => tag.is_some_and(|t| tags.iter().any(|x| x == t)),
        }
    }

    /// The subscription rows this filter is stored as.
    pub fn stored_tags(&self) -> Vec<&str> {
        match self {
            TagFilter::All => vec![ALL_TAGS],
            TagFilter::AnyOf(tags) => tags.iter().map(String::as_str).collect(),
        }
    }
}

impl std::fmt::Display for TagFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TagFilter::All => f.write_str(ALL_TAGS),
            TagFilter::AnyOf(tags) => f.write_str(&tags.join(" || ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_matches_everything_including_untagged() {
        let f = TagFilter::parse(" * ").unwrap();
        assert!(f.matches(Some("created")));
        assert!(f.matches(None));
    }

    #[test]
    fn alternatives_match_only_their_tags() {
        let f = TagFilter::parse("created || refunded||created").unwrap();
        assert_eq!(f.stored_tags(), vec!["created", "refunded"]);
        assert!(f.matches(Some("refunded")));
        assert!(!f.matches(Some("paid")));
        assert!(!f.matches(None));
        assert_eq!(f.to_string(), "created || refunded");
    }

    #[test]
    fn malformed_filters_are_refused() {
        for bad in ["", "a ||", "|| a", "a | b", "* || a", "a b", "a||*"] {
            assert!(TagFilter::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
