//! `opsplan graph`: the compiled DAG as DOT or Mermaid, with a legend: `needs` edges solid,
//! undo edges dashed, cleanup edges dotted and red (thick in Mermaid); destructive steps red
//! and bold, guards (`assert`, `confirm`) hexagons, conditional steps (`when:`) dashed and
//! marked `when`, cleanup steps rounded.

use crate::compile::{CompiledPlan, CompiledStep, EdgeKind, GraphNode};
use petgraph::visit::EdgeRef;
use std::fmt::Write;

/// A guard: what a destructive step must need (E060).
fn is_guard(s: &CompiledStep) -> bool {
    matches!(s.kind.name(), "assert" | "confirm")
}

fn label(plan: &CompiledPlan, n: GraphNode) -> (String, String) {
    match n {
        GraphNode::Step(i) => {
            let s = &plan.steps[i];
            let mut marks = Vec::new();
            if s.destructive {
                marks.push("DESTRUCTIVE");
            }
            if is_guard(s) {
                marks.push("guard");
            }
            if s.when.is_some() {
                marks.push("when");
            }
            let marks = if marks.is_empty() {
                String::new()
            } else {
                format!("\\n[{}]", marks.join(", "))
            };
            // A run-time fan-out is one node for all its items.
            let items = s.fan_out.as_ref().map_or(String::new(), |f| {
                format!("\\none step per item of {}", f.label)
            });
            (
                format!("s{i}"),
                format!("{}\\n({}){items}{marks}", s.id, s.kind.name()),
            )
        }
        GraphNode::Undo(i) => {
            let s = &plan.steps[i];
            let kind = s.undo.as_ref().map_or("", |u| u.kind.name());
            (format!("u{i}"), format!("undo {}\\n({kind})", s.id))
        }
    }
}

pub fn dot(plan: &CompiledPlan) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];",
        plan.name
    );
    if !plan.not_given.is_empty() {
        let note = crate::preview::not_given_note(&plan.not_given, |n| format!("⟨params.{n}⟩"));
        let _ = writeln!(o, "  // {note}");
    }
    for n in plan.graph.node_indices() {
        let (id, text) = label(plan, plan.graph[n]);
        let style = match plan.graph[n] {
            GraphNode::Undo(_) => ", style=dashed".to_string(),
            GraphNode::Step(i) => {
                let s = &plan.steps[i];
                let mut a = String::new();
                if is_guard(s) {
                    a.push_str(", shape=hexagon");
                }
                if s.destructive {
                    a.push_str(", color=red, penwidth=2");
                }
                match (s.is_cleanup(), s.when.is_some()) {
                    (true, true) => a.push_str(", style=\"rounded,dashed\""),
                    (true, false) => a.push_str(", style=rounded"),
                    (false, true) => a.push_str(", style=dashed"),
                    (false, false) => {}
                }
                a
            }
        };
        let _ = writeln!(o, "  {id} [label=\"{text}\"{style}];");
    }
    for e in plan.graph.edge_references() {
        let (a, _) = label(plan, plan.graph[e.source()]);
        let (b, _) = label(plan, plan.graph[e.target()]);
        let style = match e.weight() {
            EdgeKind::Needs => "",
            EdgeKind::Undo => " [style=dashed, label=\"undo\"]",
            EdgeKind::Cleanup => " [style=dotted, color=red, label=\"cleanup\"]",
        };
        let _ = writeln!(o, "  {a} -> {b}{style};");
    }
    o.push_str(DOT_LEGEND);
    o.push_str("}\n");
    o
}

/// The legend of a DOT graph: one sample of each kind of node and edge.
const DOT_LEGEND: &str = r#"  subgraph cluster_legend {
    label="legend"; fontname="monospace"; style=dotted;
    l_step [label="step"];
    l_destructive [label="destructive step", color=red, penwidth=2];
    l_guard [label="guard (assert, confirm)", shape=hexagon];
    l_when [label="conditional step (when)", style=dashed];
    l_cleanup [label="cleanup (always, releases)", style=rounded];
    l_undo [label="undo of a step", style=dashed];
    l_step -> l_destructive [label="needs"];
    l_destructive -> l_undo [style=dashed, label="undo"];
    l_guard -> l_cleanup [style=dotted, color=red, label="cleanup"];
    l_when -> l_guard [style=invis];
  }
"#;

/// The legend of a Mermaid graph.
const MERMAID_LEGEND: &str = r#"  subgraph legend["legend"]
    l_step["step"] -->|needs| l_destructive["destructive step"]
    l_destructive -. undo .-> l_undo[/"undo of a step"/]
    l_guard{{"guard (assert, confirm)"}} == cleanup ==> l_cleanup(["cleanup (always, releases)"])
    l_when["conditional step (when)"]
  end
  style l_destructive stroke:#d00,stroke-width:3px
  style l_when stroke-dasharray:5 5
"#;

pub fn mermaid(plan: &CompiledPlan) -> String {
    let mut o = String::from("flowchart TD\n");
    if !plan.not_given.is_empty() {
        let note = crate::preview::not_given_note(&plan.not_given, |n| format!("⟨params.{n}⟩"));
        let _ = writeln!(o, "  %% {note}");
    }
    for n in plan.graph.node_indices() {
        let (id, text) = label(plan, plan.graph[n]);
        let text = text.replace("\\n", "<br>");
        let shape = match plan.graph[n] {
            GraphNode::Undo(_) => format!("{id}[/\"{text}\"/]"),
            GraphNode::Step(i) if is_guard(&plan.steps[i]) => format!("{id}{{{{\"{text}\"}}}}"),
            GraphNode::Step(i) if plan.steps[i].is_cleanup() => format!("{id}([\"{text}\"])"),
            _ => format!("{id}[\"{text}\"]"),
        };
        let _ = writeln!(o, "  {shape}");
    }
    for e in plan.graph.edge_references() {
        let (a, _) = label(plan, plan.graph[e.source()]);
        let (b, _) = label(plan, plan.graph[e.target()]);
        let arrow = match e.weight() {
            EdgeKind::Needs => "-->".to_string(),
            EdgeKind::Undo => "-. undo .->".to_string(),
            EdgeKind::Cleanup => "== cleanup ==>".to_string(),
        };
        let _ = writeln!(o, "  {a} {arrow} {b}");
    }
    for (i, s) in plan.steps.iter().enumerate() {
        match (s.destructive, s.when.is_some()) {
            (true, true) => {
                let _ = writeln!(
                    o,
                    "  style s{i} stroke:#d00,stroke-width:3px,stroke-dasharray:5 5"
                );
            }
            (true, false) => {
                let _ = writeln!(o, "  style s{i} stroke:#d00,stroke-width:3px");
            }
            (false, true) => {
                let _ = writeln!(o, "  style s{i} stroke-dasharray:5 5");
            }
            (false, false) => {}
        }
    }
    o.push_str(MERMAID_LEGEND);
    o
}
