//! `opsplan graph`: the compiled DAG as DOT or Mermaid; `needs` edges solid, undo edges
//! dashed, cleanup edges dotted and red.

use crate::compile::{CompiledPlan, EdgeKind, GraphNode};
use petgraph::visit::EdgeRef;
use std::fmt::Write;

fn label(plan: &CompiledPlan, n: GraphNode) -> (String, String) {
    match n {
        GraphNode::Step(i) => {
            let s = &plan.steps[i];
            (format!("s{i}"), format!("{}\\n({})", s.id, s.kind.name()))
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
            GraphNode::Undo(_) => ", style=dashed",
            GraphNode::Step(i) if plan.steps[i].destructive => ", color=red, penwidth=2",
            GraphNode::Step(i) if plan.steps[i].is_cleanup() => ", style=rounded",
            _ => "",
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
    o.push_str("}\n");
    o
}

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
        if s.destructive {
            let _ = writeln!(o, "  style s{i} stroke:#d00,stroke-width:3px");
        }
    }
    o
}
