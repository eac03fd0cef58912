//! How controllers run: shared informers (one watch per kind), the reference index, and the reconciler
//! skeleton every controller is written on. See [`controller`] for what the skeleton owns.

pub(crate) mod controller;
pub(crate) mod index;
pub(crate) mod informer;

pub(crate) use controller::{Gone, Reconciler, Setup};
pub(crate) use index::Reference;
pub use informer::Informers;
