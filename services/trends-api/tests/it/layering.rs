//! The crate's module dependencies, checked on its source so that the circles cannot come
//! back: `api::types` imports nothing from the crate, modules depend one way (no cycle), and
//! the chain `api::types ← prepared ← api ← openapi ← app ← server` is never walked backwards.
//!
//! A module's dependencies are the `crate::…` and `super::…` paths in its code (imports, and
//! paths written out, such as the handlers `openapi.rs` lists), and the paths through a module
//! it imported whole (`use crate::api;` then `api::trends::trends`), each resolved to the
//! longest module it names; doc comments and the `#[cfg(test)]` module at the end of a file
//! are left out (a unit test may reach anything). Files map to modules as rustc maps them:
//! `src/lib.rs` is the root `crate`, `src/api/mod.rs` is `api`, `src/api/types.rs` is
//! `api::types`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The root module.
const ROOT: &str = "crate";

/// The dependency direction the architecture promises, from the bottom: no module of a link
/// may import a module of a later link. A name covers its submodules (`api` is `api::*`),
/// except where a more specific link names one (`api::types`).
const CHAIN: [&str; 6] = ["api::types", "prepared", "api", "openapi", "app", "server"];

/// Every module of the library and the source it owns.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read src")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path
                .file_stem()
                .and_then(|n| n.to_str())
                .expect("a UTF-8 file name")
                .to_string();
            if path.is_dir() {
                let mut inner = prefix.to_vec();
                inner.push(name);
                walk(&path, &inner, out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || (prefix.is_empty() && name == "main") {
                continue;
            }
            let mut module = prefix.to_vec();
            if !(name == "mod" || (prefix.is_empty() && name == "lib")) {
                module.push(name);
            }
            let module = if module.is_empty() {
                ROOT.to_string()
            } else {
                module.join("::")
            };
            out.insert(
                module,
                std::fs::read_to_string(&path).expect("read a source"),
            );
        }
    }
    let mut out = BTreeMap::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &[],
        &mut out,
    );
    out
}

/// The code of a source: no comment lines, nothing from `#[cfg(test)]` on.
fn code(source: &str) -> String {
    let mut out = String::new();
    for line in source.lines() {
        let line = line.trim();
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        if !line.starts_with("//") {
            out.push_str(line);
            out.push(' ');
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The full paths written at the start of `text` after `prefix` (a path, or a `{…}` group of
/// them): `a::b::{c, d::e}` gives `a::b::c` and `a::b::d::e`.
fn paths(text: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    let mut rest = text.trim_start();
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item_start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        paths(&group[item_start..i], path.clone(), out);
                        return;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        paths(&group[item_start..i], path.clone(), out);
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
            return;
        }
        let end = rest.find(|c| !is_ident(c)).unwrap_or(rest.len());
        if end > 0 && &rest[..end] != "self" {
            path.push(rest[..end].to_string());
        }
        match rest[end..].strip_prefix("::") {
            Some(after) => rest = after.trim_start(),
            None => {
                out.push(path);
                return;
            }
        }
    }
}

/// Every path `code` writes after `marker` (`crate::`, `super::`, `api::`), as a path from the
/// crate root: `base` followed by what was written.
fn collect(code: &str, marker: &str, base: &[String], out: &mut Vec<Vec<String>>) {
    for (at, _) in code.match_indices(marker) {
        if code[..at].ends_with(|c| is_ident(c) || c == ':') {
            continue; // part of a longer name or path
        }
        paths(&code[at + marker.len()..], base.to_vec(), out);
    }
}

/// The modules `module`'s code refers to (itself excluded).
fn dependencies(module: &str, code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let parent: Vec<String> = match module.rsplit_once("::") {
        Some((parent, _)) => parent.split("::").map(String::from).collect(),
        None => Vec::new(),
    };
    let mut written = Vec::new();
    collect(code, "crate::", &[], &mut written);
    collect(code, "super::", &parent, &mut written);
    // Modules in scope by their own name: those imported whole (`use crate::api;`), and in the
    // root its children. Paths through them (`api::trends::trends`) count too.
    let mut aliases: BTreeMap<String, Vec<String>> = written
        .iter()
        .filter(|path| known.contains(&path.join("::")))
        .filter_map(|path| Some((path.last()?.clone(), path.clone())))
        .collect();
    if module == ROOT {
        for child in known.iter().filter(|m| *m != ROOT && !m.contains("::")) {
            aliases.insert(child.clone(), vec![child.clone()]);
        }
    }
    for (alias, path) in &aliases {
        collect(code, &format!("{alias}::"), path, &mut written);
    }
    written
        .into_iter()
        .map(|path| {
            (0..=path.len())
                .rev()
                .map(|n| path[..n].join("::"))
                .find(|prefix| known.contains(prefix))
                .unwrap_or_else(|| ROOT.to_string())
        })
        .filter(|dependency| dependency != module)
        .collect()
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(module, source)| {
            let deps = dependencies(module, &code(source), &known);
            (module.clone(), deps)
        })
        .collect()
}

/// The link of [`CHAIN`] a module belongs to, if any: the most specific name that covers it.
fn link(module: &str) -> Option<usize> {
    CHAIN
        .iter()
        .enumerate()
        .filter(|(_, name)| module == **name || module.starts_with(&format!("{name}::")))
        .max_by_key(|(_, name)| name.len())
        .map(|(i, _)| i)
}

#[test]
fn the_parser_reads_imports_groups_and_written_paths() {
    let known: BTreeSet<String> = ["crate", "a", "a::b", "c", "d", "e", "f", "f::g"]
        .into_iter()
        .map(String::from)
        .collect();
    let code = code(
        "use crate::a::b::{self, X};\nuse crate::{c, d::Y, f};\n// crate::e in a comment\n\
         fn h() { crate::run(); let _ = super::b::Z; f::g::go(); x::f::no(); }\n\
         #[cfg(test)]\nmod tests { use crate::e; }",
    );
    let expected: BTreeSet<String> = ["a::b", "c", "d", "f", "f::g", "crate"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(dependencies("a::x", &code, &known), expected);
}

#[test]
fn api_types_imports_nothing_from_the_crate() {
    let graph = graph();
    let types = graph.get("api::types").expect("src/api/types.rs");
    assert!(types.is_empty(), "api::types imports {types:?}");
}

#[test]
fn modules_depend_one_way() {
    let graph = graph();
    assert!(graph.len() >= 15, "too few modules found: {graph:?}");
    // Depth-first search; a module met again while still on the path closes a cycle.
    fn visit<'a>(
        module: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(module) {
            return;
        }
        if let Some(at) = path.iter().position(|m| *m == module) {
            panic!("a cycle: {} → {module}", path[at..].join(" → "));
        }
        path.push(module);
        for dependency in graph.get(module).into_iter().flatten() {
            visit(dependency, graph, path, done);
        }
        path.pop();
        done.insert(module);
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
    }
    for (module, dependencies) in &graph {
        for dependency in dependencies {
            if let (Some(from), Some(to)) = (link(module), link(dependency)) {
                assert!(
                    from >= to,
                    "{module} imports {dependency}: against {}",
                    CHAIN.join(" ← ")
                );
            }
        }
    }
}
