//! `.hawserignore`: gitignore syntax, matched by hand (a dependency for this would
//! cost more than the 150 lines it saves).
//!
//! Supported, as in gitignore(5): blank lines and `#` comments; `\#` and `\!` for
//! literal first characters; trailing spaces trimmed unless escaped with `\`; `!` to
//! re-include; a trailing `/` to match directories only; a `/` at the start or in the
//! middle anchors the pattern to the directory of the `.hawserignore` file, otherwise
//! it matches a name at any depth; `*` and `?` (never matching `/`), `[a-z]`, `[!a]`;
//! `**/` (any leading directories), `/**` (everything inside), `/**/` (zero or more
//! directories). The last matching line decides. As in git, a file cannot be
//! re-included when a directory above it is ignored, because that directory is never
//! entered.

/// The rules of one `.hawserignore` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreFile {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    negate: bool,
    dir_only: bool,
    /// Matches the whole relative path (else: only the last component).
    anchored: bool,
    segments: Vec<String>,
}

impl IgnoreFile {
    /// Parses a `.hawserignore`. Every line is valid, so this cannot fail.
    pub fn parse(text: &str) -> Self {
        let rules = text.lines().filter_map(parse_line).collect();
        Self { rules }
    }

    /// Whether `path` (relative to this file's directory, `/`-separated) is ignored:
    /// `Some(true)` ignored, `Some(false)` re-included by a `!` line, `None` no rule
    /// matches.
    pub fn decide(&self, path: &str, is_dir: bool) -> Option<bool> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let name = segments.last().copied().unwrap_or("");
        let mut verdict = None;
        for rule in &self.rules {
            if rule.dir_only && !is_dir {
                continue;
            }
            let matched = if rule.anchored {
                match_path(&rule.segments, &segments)
            } else {
                rule.segments
                    .first()
                    .is_some_and(|pattern| glob_str(pattern, name))
            };
            if matched {
                verdict = Some(!rule.negate);
            }
        }
        verdict
    }
}

/// The ignore files in effect for one walk: each with the directory it sits in
/// (relative to the root, `""` or ending in `/`). Deeper files take precedence.
#[derive(Debug, Clone, Default)]
pub struct IgnoreStack {
    files: Vec<(String, IgnoreFile)>,
}

impl IgnoreStack {
    pub fn push(&mut self, dir: String, file: IgnoreFile) {
        self.files.push((dir, file));
    }

    /// Drops the files of directories that `path` is not inside (leaving a subtree).
    pub fn retain_ancestors_of(&mut self, path: &str) {
        self.files.retain(|(dir, _)| path.starts_with(dir.as_str()));
    }

    /// Whether `path` (relative to the root) is ignored.
    pub fn is_ignored(&self, path: &str, is_dir: bool) -> bool {
        for (dir, file) in self.files.iter().rev() {
            if let Some(rest) = path.strip_prefix(dir.as_str())
                && let Some(verdict) = file.decide(rest, is_dir)
            {
                return verdict;
            }
        }
        false
    }
}

fn parse_line(line: &str) -> Option<Rule> {
    let line = trim_trailing_spaces(line);
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (negate, line) = match line.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    // `\#` and `\!` are literal; the glob matcher handles the backslash itself.
    let (dir_only, line) = match line.strip_suffix('/') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let anchored = line.contains('/');
    let line = line.strip_prefix('/').unwrap_or(line);
    if line.is_empty() {
        return None;
    }
    let segments = line
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Some(Rule {
        negate,
        dir_only,
        anchored,
        segments,
    })
}

fn trim_trailing_spaces(line: &str) -> &str {
    let mut end = line.len();
    while line[..end].ends_with(' ') && !line[..end - 1].ends_with('\\') {
        end -= 1;
    }
    &line[..end]
}

/// Matches path segments against pattern segments, `**` spanning directories.
/// Dynamic programming, so patterns with many `**` stay linear in practice.
fn match_path(pattern: &[String], path: &[&str]) -> bool {
    let (p, s) = (pattern.len(), path.len());
    // row[j]: does pattern[i..] match path[j..]? Computed from the last row upward.
    let mut next = vec![false; s + 1];
    next[s] = true;
    for i in (0..p).rev() {
        let mut row = vec![false; s + 1];
        for j in (0..=s).rev() {
            row[j] = if pattern[i] == "**" {
                if i + 1 == p {
                    j < s // a trailing `/**` matches everything inside, not the directory
                } else {
                    next[j] || (j < s && row[j + 1])
                }
            } else {
                j < s && glob_str(&pattern[i], path[j]) && next[j + 1]
            };
        }
        next = row;
    }
    next[0]
}

fn glob_str(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    glob(&pattern, &name)
}

/// Matches one path segment against a glob: `*`, `?`, `[...]`, `\x`. By characters,
/// so `?` matches one `é`.
fn glob(pattern: &[char], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, name index).
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                '*' => {
                    while p < pattern.len() && pattern[p] == '*' {
                        p += 1;
                    }
                    star = Some((p, n));
                    continue;
                }
                '?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, len)) = class(&pattern[p..], name[n]) {
                        if matched {
                            p += len;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == '[' {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                '\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == name[n] {
                        p += 2;
                        n += 1;
                        continue;
                    }
                }
                c => {
                    if c == name[n] {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
            }
        }
        // Mismatch: let the last `*` swallow one more byte, or fail.
        match star {
            Some((sp, sn)) => {
                p = sp;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class at the start of `pattern` (`[...]`). Returns whether
/// it matched and the class's length, or `None` when the class is not closed.
fn class(pattern: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pattern.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < pattern.len() {
        let lo = pattern[i];
        if lo == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if pattern.get(i + 1) == Some(&'-') && pattern.get(i + 2).is_some_and(|&h| h != ']') {
            let hi = pattern[i + 2];
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignored(rules: &str, path: &str, is_dir: bool) -> bool {
        IgnoreFile::parse(rules).decide(path, is_dir) == Some(true)
    }

    #[test]
    fn comments_and_blank_lines_are_not_rules() {
        let file = IgnoreFile::parse("# a comment\n\n   \n");
        assert_eq!(file, IgnoreFile::default());
        assert!(ignored("\\#notes.yaml", "#notes.yaml", false));
    }

    #[test]
    fn a_name_matches_at_any_depth() {
        assert!(ignored("secret.yaml", "secret.yaml", false));
        assert!(ignored("secret.yaml", "a/b/secret.yaml", false));
        assert!(!ignored("secret.yaml", "a/b/secret.yaml.bak", false));
    }

    #[test]
    fn star_and_question_mark_stay_within_a_segment() {
        assert!(ignored("*.json", "a/b.json", false));
        assert!(ignored("/a/*.json", "a/b.json", false));
        assert!(!ignored("/a/*.json", "a/b/c.json", false));
        assert!(ignored("v?.yaml", "v1.yaml", false));
        assert!(!ignored("v?.yaml", "v12.yaml", false));
        assert!(ignored("*-test*", "my-test-file.yaml", false));
    }

    #[test]
    fn leading_slash_anchors_to_the_ignore_file() {
        assert!(ignored("/drafts", "drafts", true));
        assert!(!ignored("/drafts", "apps/drafts", true));
        // A slash in the middle anchors too.
        assert!(ignored("apps/drafts", "apps/drafts", true));
        assert!(!ignored("apps/drafts", "x/apps/drafts", true));
    }

    #[test]
    fn trailing_slash_matches_only_directories() {
        assert!(ignored("tmp/", "a/tmp", true));
        assert!(!ignored("tmp/", "a/tmp", false));
    }

    #[test]
    fn double_star_spans_directories() {
        assert!(ignored("**/test", "test", true));
        assert!(ignored("**/test", "a/b/test", true));
        assert!(ignored("docs/**", "docs/a/b.yaml", false));
        assert!(!ignored("docs/**", "docs", true));
        assert!(ignored("a/**/b.yaml", "a/b.yaml", false));
        assert!(ignored("a/**/b.yaml", "a/x/y/b.yaml", false));
        assert!(!ignored("a/**/b.yaml", "c/a/b.yaml", false));
    }

    #[test]
    fn the_last_matching_line_decides_and_bang_re_includes() {
        let rules = "*.yaml\n!keep.yaml\n";
        assert!(ignored(rules, "x.yaml", false));
        assert_eq!(
            IgnoreFile::parse(rules).decide("keep.yaml", false),
            Some(false)
        );
        let rules = "!keep.yaml\n*.yaml\n";
        assert!(ignored(rules, "keep.yaml", false));
        assert!(ignored("\\!bang.yaml", "!bang.yaml", false));
    }

    #[test]
    fn character_classes() {
        assert!(ignored("[abc].yaml", "b.yaml", false));
        assert!(!ignored("[abc].yaml", "d.yaml", false));
        assert!(ignored("v[0-9].yaml", "v7.yaml", false));
        assert!(ignored("[!a].yaml", "b.yaml", false));
        assert!(!ignored("[!a].yaml", "a.yaml", false));
        assert!(
            ignored("[.yaml", "[.yaml", false),
            "an unclosed class is literal"
        );
    }

    #[test]
    fn question_mark_matches_one_character_not_one_byte() {
        assert!(ignored("caf?.yaml", "café.yaml", false));
        assert!(ignored("[é]", "é", false));
    }

    #[test]
    fn trailing_spaces_are_trimmed_unless_escaped() {
        assert!(ignored("a.yaml   ", "a.yaml", false));
        assert!(ignored("a\\ ", "a ", false));
    }

    #[test]
    fn many_stars_do_not_blow_up() {
        let pattern = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
        let name = "a".repeat(5000);
        assert!(!glob_str(pattern, &name));
        let rules = "**/**/**/**/**/**/**/**/**/**/**/**/z";
        let path = vec!["a"; 200].join("/");
        assert!(!ignored(rules, &path, false));
    }

    #[test]
    fn deeper_files_take_precedence() {
        let mut stack = IgnoreStack::default();
        stack.push(String::new(), IgnoreFile::parse("*.json\n"));
        stack.push(
            "apps/".into(),
            IgnoreFile::parse("!keep.json\n/local.yaml\n"),
        );
        assert!(stack.is_ignored("x.json", false));
        assert!(stack.is_ignored("apps/x.json", false));
        assert!(!stack.is_ignored("apps/keep.json", false));
        assert!(stack.is_ignored("apps/local.yaml", false));
        assert!(!stack.is_ignored("local.yaml", false));
        stack.retain_ancestors_of("other/");
        assert!(!stack.is_ignored("apps/local.yaml", false));
    }
}
