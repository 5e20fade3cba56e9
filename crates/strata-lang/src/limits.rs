//! The size limits of a rule, shared by the parser, the JSON reader and the
//! checker so that a rule accepted in one form is accepted in the others.

use crate::ast::Expr;

/// Levels of nesting: in the text, each `(` group and each `NOT` opens one.
pub const MAX_DEPTH: usize = 64;

/// Conditions (leaves) in one rule.
pub const MAX_CONDITIONS: usize = 1_000;

/// A cap on the raw depth of a tree, whatever its shape. Trees can hold
/// nodes that cost no level in the text (an `OR` directly inside an `OR`, an
/// `AND` inside an `OR`), so the level count alone does not bound recursion.
/// Any tree the text parser accepts stays well below this (at most two
/// nodes per level plus the top two).
pub(crate) const MAX_RAW_DEPTH: usize = 4 * MAX_DEPTH;

/// Where a node sits: the levels the printed text needs down to it (its
/// NOTs and the parentheses precedence forces), and its depth in the tree.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Nesting {
    pub levels: usize,
    pub raw: usize,
    node: NodeKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeKind {
    And,
    Or,
    Not,
    Cond,
}

impl NodeKind {
    pub fn of(expr: &Expr) -> NodeKind {
        match expr {
            Expr::And(_) => NodeKind::And,
            Expr::Or(_) => NodeKind::Or,
            Expr::Not(_) => NodeKind::Not,
            Expr::Cond(_) => NodeKind::Cond,
        }
    }
}

impl Nesting {
    pub fn root(node: NodeKind) -> Nesting {
        Nesting {
            levels: usize::from(node == NodeKind::Not),
            raw: 1,
            node,
        }
    }

    pub fn child(self, node: NodeKind) -> Nesting {
        // A NOT is a level; so is a group that must be parenthesised: an
        // OR inside an AND, any group under a NOT.
        let costs = matches!(
            (self.node, node),
            (_, NodeKind::Not)
                | (NodeKind::And, NodeKind::Or)
                | (NodeKind::Not, NodeKind::And | NodeKind::Or)
        );
        Nesting {
            levels: self.levels + usize::from(costs),
            raw: self.raw + 1,
            node,
        }
    }

    pub fn too_deep(self) -> bool {
        self.levels > MAX_DEPTH || self.raw > MAX_RAW_DEPTH
    }
}

pub(crate) fn too_deep_message() -> String {
    format!("rule nests too deeply; at most {MAX_DEPTH} levels of parentheses and NOT")
}

pub(crate) fn too_many_message() -> String {
    // Written as language.md writes it: 1,000.
    let (thousands, rest) = (MAX_CONDITIONS / 1000, MAX_CONDITIONS % 1000);
    let count = if thousands > 0 {
        format!("{thousands},{rest:03}")
    } else {
        rest.to_string()
    };
    format!("rule has too many conditions; at most {count}")
}
