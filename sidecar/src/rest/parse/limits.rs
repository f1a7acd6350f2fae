//! Bounds on how much one parsed request may ask for, checked before any planning or SQL.
//!
//! Postgres plans and JIT-compiles whatever it is given: an anonymous GET repeating one filter 5,000
//! times (a 35 kB URL) held a backend for 33 s on a 50,000-row table. PostgREST has no such bounds;
//! these defaults sit far above what a hand-written or supabase-js query uses (a page of a dozen
//! filters, a handful of embeddings), so no legitimate client meets them, while every refusal is
//! an answer in microseconds. Each bound is a `sluice serve` setting (see `crate::config`); the
//! parser's own nesting guard (`MAX_DEPTH`, 16) stays the hard ceiling of both depths.
//!
//! What is counted, over the whole request (every embed path):
//!
//! | Limit           | Counts                                                          | Default |
//! |-----------------|-----------------------------------------------------------------|---------|
//! | `Filters`       | filter parameters (`id=eq.1`, `author.name=eq.x`)               | 100     |
//! | `LogicBranches` | conditions and groups inside `or=`/`and=` trees                 | 100     |
//! | `LogicDepth`    | nesting of `or`/`and` groups (`or=(a.eq.1)` is 1)                | 8       |
//! | `SelectItems`   | columns, `*` and embeddings in `select=`, at every level        | 500     |
//! | `EmbedDepth`    | nesting of embeddings (`select=*,author(*)` is 1)               | 8       |
//! | `OrderTerms`    | terms of every `order=`                                         | 100     |

use super::error::ParseError;
use super::logic::LogicTree;
use super::select::SelectItem;
use super::RestRequest;

/// The most a request may ask for; see the module documentation for what each counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    pub filters: usize,
    pub logic_branches: usize,
    pub logic_depth: usize,
    pub select_items: usize,
    pub embed_depth: usize,
    pub order_terms: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            filters: 100,
            logic_branches: 100,
            logic_depth: 8,
            select_items: 500,
            embed_depth: 8,
            order_terms: 100,
        }
    }
}

/// Which bound a request passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Filters,
    LogicBranches,
    LogicDepth,
    SelectItems,
    EmbedDepth,
    OrderTerms,
}

impl Limit {
    /// What is counted, in the error message: "the request has 5000 {what}".
    pub fn what(self) -> &'static str {
        match self {
            Limit::Filters => "filters",
            Limit::LogicBranches => "conditions in or/and trees",
            Limit::LogicDepth => "levels of or/and nesting",
            Limit::SelectItems => "select items",
            Limit::EmbedDepth => "levels of embedding",
            Limit::OrderTerms => "order terms",
        }
    }

    /// The environment variable and flag that set it, for the hint.
    pub fn setting(self) -> (&'static str, &'static str) {
        match self {
            Limit::Filters => ("SLUICE_MAX_QUERY_FILTERS", "--max-query-filters"),
            Limit::LogicBranches => (
                "SLUICE_MAX_QUERY_LOGIC_BRANCHES",
                "--max-query-logic-branches",
            ),
            Limit::LogicDepth => ("SLUICE_MAX_QUERY_LOGIC_DEPTH", "--max-query-logic-depth"),
            Limit::SelectItems => ("SLUICE_MAX_QUERY_SELECT_ITEMS", "--max-query-select-items"),
            Limit::EmbedDepth => ("SLUICE_MAX_QUERY_EMBED_DEPTH", "--max-query-embed-depth"),
            Limit::OrderTerms => ("SLUICE_MAX_QUERY_ORDER_TERMS", "--max-query-order-terms"),
        }
    }
}

impl QueryLimits {
    /// The first bound `request` passes, as a `SLUICE115` error; Ok when it is within all.
    pub fn check(&self, request: &RestRequest) -> Result<(), ParseError> {
        let trees = request.logic.iter().map(|scoped| &scoped.item);
        let counts = [
            (Limit::Filters, request.filters.len(), self.filters),
            (
                Limit::LogicBranches,
                trees.clone().map(branches).sum(),
                self.logic_branches,
            ),
            (
                Limit::LogicDepth,
                trees.map(logic_depth).max().unwrap_or(0),
                self.logic_depth,
            ),
            (
                Limit::SelectItems,
                select_items(&request.select),
                self.select_items,
            ),
            (
                Limit::EmbedDepth,
                embed_depth(&request.select),
                self.embed_depth,
            ),
            (
                Limit::OrderTerms,
                request.order.iter().map(|scoped| scoped.item.len()).sum(),
                self.order_terms,
            ),
        ];
        match counts.into_iter().find(|(_, value, max)| value > max) {
            Some((limit, value, max)) => Err(ParseError::TooComplex { limit, value, max }),
            None => Ok(()),
        }
    }
}

/// Every condition and group below the tree's root.
fn branches(tree: &LogicTree) -> usize {
    match tree {
        LogicTree::Condition(_) => 0,
        LogicTree::Group { children, .. } => children.iter().map(|child| 1 + branches(child)).sum(),
    }
}

/// Groups on the deepest path: the root group counts 1.
fn logic_depth(tree: &LogicTree) -> usize {
    match tree {
        LogicTree::Condition(_) => 0,
        LogicTree::Group { children, .. } => {
            1 + children.iter().map(logic_depth).max().unwrap_or(0)
        }
    }
}

fn select_items(items: &[SelectItem]) -> usize {
    items
        .iter()
        .map(|item| match item {
            SelectItem::Embed(embed) | SelectItem::Spread(embed) => 1 + select_items(&embed.select),
            SelectItem::Star | SelectItem::Column(_) | SelectItem::Aggregate(_) => 1,
        })
        .sum()
}

fn embed_depth(items: &[SelectItem]) -> usize {
    items
        .iter()
        .map(|item| match item {
            SelectItem::Embed(embed) | SelectItem::Spread(embed) => 1 + embed_depth(&embed.select),
            SelectItem::Star | SelectItem::Column(_) | SelectItem::Aggregate(_) => 0,
        })
        .max()
        .unwrap_or(0)
}
