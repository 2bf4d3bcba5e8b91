//! A target's include/exclude globs, compiled once per sync: which paths of a branch are synced.
//!
//! Globs follow `PathFilters`: `*` and `?` stay within one path segment, `**` spans any number of
//! segments. A path is synced when it matches any include glob (every path when there are none)
//! and no exclude glob.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use hooklog_domain::connector_target::PathFilters;

/// Compiled `PathFilters`.
#[derive(Debug, Clone)]
pub struct PathMatcher {
    /// `None` when the include list is empty: every path is included.
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl PathMatcher {
    /// Compiles `filters`; the error names the glob that does not compile and why.
    pub fn new(filters: &PathFilters) -> Result<Self, String> {
        let include = if filters.include.is_empty() {
            None
        } else {
            Some(compile("include", &filters.include)?)
        };
        let exclude = compile("exclude", &filters.exclude)?;
        Ok(Self { include, exclude })
    }

    /// No filters: every path matches.
    pub fn all() -> Self {
        Self {
            include: None,
            exclude: GlobSet::empty(),
        }
    }

    /// Whether `path` (from the repository root, `/`-separated) is synced.
    pub fn matches(&self, path: &str) -> bool {
        let included = self.include.as_ref().is_none_or(|set| set.is_match(path));
        included && !self.exclude.is_match(path)
    }
}

fn compile(list: &str, globs: &[String]) -> Result<GlobSet, String> {
    let mut set = GlobSetBuilder::new();
    for glob in globs {
        let compiled = GlobBuilder::new(glob)
            .literal_separator(true)
            .build()
            .map_err(|err| format!("{list} glob {glob:?} is not valid: {}", err.kind()))?;
        set.add(compiled);
    }
    set.build()
        .map_err(|err| format!("{list} globs do not compile: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(include: &[&str], exclude: &[&str]) -> PathMatcher {
        PathMatcher::new(&PathFilters {
            include: include.iter().map(|g| g.to_string()).collect(),
            exclude: exclude.iter().map(|g| g.to_string()).collect(),
        })
        .expect("valid globs")
    }

    #[test]
    fn no_filters_match_every_path() {
        let all = PathMatcher::all();
        let empty = matcher(&[], &[]);
        for path in ["README.md", "a/b/c.txt", ".claude-plugin/plugin.json"] {
            assert!(all.matches(path), "{path}");
            assert!(empty.matches(path), "{path}");
        }
    }

    #[test]
    fn a_single_star_stays_within_one_path_segment() {
        let m = matcher(&["skills/*.md"], &[]);
        assert!(m.matches("skills/a.md"));
        assert!(!m.matches("skills/x/a.md"));
        assert!(!m.matches("other/a.md"));
    }

    #[test]
    fn a_double_star_spans_any_number_of_segments() {
        let m = matcher(&["plugins/**/SKILL.md"], &[]);
        assert!(m.matches("plugins/SKILL.md"));
        assert!(m.matches("plugins/p/skills/s/SKILL.md"));
        assert!(!m.matches("SKILL.md"));

        let under = matcher(&["docs/**"], &[]);
        assert!(under.matches("docs/a/b/c.md"));
        assert!(!under.matches("src/docs.md"));
    }

    #[test]
    fn a_question_mark_matches_one_character_but_not_a_slash() {
        let m = matcher(&["a?.md"], &[]);
        assert!(m.matches("ab.md"));
        assert!(!m.matches("abc.md"));
        assert!(!m.matches("a/.md"));
    }

    #[test]
    fn any_include_glob_is_enough() {
        let m = matcher(&["*.json", "skills/**"], &[]);
        assert!(m.matches("x.json"));
        assert!(m.matches("skills/a/SKILL.md"));
        assert!(!m.matches("README.md"));
    }

    #[test]
    fn an_exclude_glob_wins_over_the_includes() {
        let m = matcher(&["**/*.md"], &["**/drafts/**"]);
        assert!(m.matches("a/b.md"));
        assert!(!m.matches("a/drafts/b.md"));
        assert!(!m.matches("drafts/b.md"));
    }

    #[test]
    fn excludes_alone_filter_out_of_every_path() {
        let m = matcher(&[], &["*.png"]);
        assert!(m.matches("a.md"));
        assert!(!m.matches("a.png"));
        assert!(m.matches("img/a.png"), "`*` does not cross `/`");
    }

    #[test]
    fn a_bad_glob_is_refused_with_its_name() {
        let err = PathMatcher::new(&PathFilters {
            include: vec!["ok/**".into()],
            exclude: vec!["bad[".into()],
        })
        .unwrap_err();
        assert!(err.contains("exclude glob \"bad[\""), "{err}");
    }
}
