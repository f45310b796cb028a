//! tract plans of a loaded ONNX graph and their run states. A graph whose inputs all start
//! with the same free dimension (the batch's rows) also gets plans made for one row count,
//! for the first few counts requests bring: with every dimension known, tract picks the
//! matrix kernels for the actual sizes instead of one that must fit any size.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use tract_onnx::prelude::*;

type Plan = TypedSimplePlan<TypedModel>;
type State = TypedSimpleState<TypedModel, Arc<Plan>>;

/// How many row counts get a plan of their own; others run the generic plan.
const SIZED_PLANS: usize = 8;

thread_local! {
    /// This thread's run states of plans without per-run op state, kept between requests
    /// (building one allocates every node's slots and the matrix kernels' scratch space).
    static STATES: RefCell<Vec<State>> = const { RefCell::new(Vec::new()) };
}

#[derive(Clone)]
struct Runnable {
    plan: Arc<Plan>,
    /// Whether a run state can serve the next request: no op keeps state between runs.
    reusable: bool,
}

impl Runnable {
    fn new(model: TypedModel) -> TractResult<Self> {
        let plan = Arc::new(model.into_optimized()?.into_runnable()?);
        let reusable = State::new(plan.clone())?.states.iter().all(Option::is_none);
        Ok(Runnable { plan, reusable })
    }

    fn run(&self, feeds: TVec<TValue>) -> TractResult<TVec<TValue>> {
        if !self.reusable {
            return self.plan.run(feeds);
        }
        STATES.with(|cell| {
            let kept = {
                let mut states = cell.borrow_mut();
                let at = states
                    .iter()
                    .position(|s| std::ptr::eq(s.plan(), &*self.plan));
                at.map(|i| states.swap_remove(i))
            };
            let mut state = match kept {
                Some(state) => state,
                None => State::new(self.plan.clone())?,
            };
            // A failed run's state is dropped, not kept.
            let outputs = state.run(feeds)?;
            state.session_state.tensors.clear();
            let mut states = cell.borrow_mut();
            if states.len() > SIZED_PLANS {
                states.remove(0);
            }
            states.push(state);
            Ok(outputs)
        })
    }
}

pub struct Plans {
    generic: Runnable,
    /// The decluttered graph and its batch dimension, when every input starts with it.
    batch: Option<(TypedModel, Symbol)>,
    sized: Mutex<Vec<(usize, Option<Runnable>)>>,
}

impl Plans {
    pub fn new(model: TypedModel) -> TractResult<Self> {
        let batch = batch_symbol(&model)?.map(|s| (model.clone(), s));
        Ok(Plans {
            generic: Runnable::new(model)?,
            batch,
            sized: Mutex::new(Vec::new()),
        })
    }

    pub fn run(&self, feeds: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let rows = feeds.first().and_then(|f| f.shape().first().copied());
        let same = feeds.iter().all(|f| f.shape().first().copied() == rows);
        match rows.filter(|&n| same && n > 0).and_then(|n| self.sized(n)) {
            Some(runnable) => runnable.run(feeds),
            None => self.generic.run(feeds),
        }
    }

    /// The plan for `rows` rows, made on first use (while fewer than [`SIZED_PLANS`]).
    fn sized(&self, rows: usize) -> Option<Runnable> {
        let (model, symbol) = self.batch.as_ref()?;
        {
            let sized = self.sized.lock().ok()?;
            if let Some((_, r)) = sized.iter().find(|(n, _)| *n == rows) {
                return r.clone();
            }
            if sized.len() >= SIZED_PLANS {
                return None;
            }
        }
        let values = SymbolValues::default().with(symbol, i64::try_from(rows).ok()?);
        // A graph tract cannot specialize keeps the generic plan for this size.
        let made = model.concretize_dims(&values).and_then(Runnable::new).ok();
        let mut sized = self.sized.lock().ok()?;
        if !sized.iter().any(|(n, _)| *n == rows) && sized.len() < SIZED_PLANS {
            sized.push((rows, made.clone()));
        }
        made
    }
}

/// The symbol every input's first dimension is, with no other free dimension in the inputs.
fn batch_symbol(model: &TypedModel) -> TractResult<Option<Symbol>> {
    let mut found: Option<Symbol> = None;
    for outlet in model.input_outlets()? {
        let fact = model.outlet_fact(*outlet)?;
        let Some((TDim::Sym(s), rest)) = fact.shape.dims().split_first() else {
            return Ok(None);
        };
        if rest.iter().any(|d| d.to_i64().is_err()) || found.as_ref().is_some_and(|f| f != s) {
            return Ok(None);
        }
        found = Some(s.clone());
    }
    Ok(found)
}
