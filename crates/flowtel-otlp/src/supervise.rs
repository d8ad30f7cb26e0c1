//! Tasks whose panic is kept for whoever watches them.
//!
//! A panic in a spawned tokio task ends the task and is otherwise only seen by whoever awaits
//! its `JoinHandle`; a sender task that panicked would leave its queue filling up (each
//! overflow counted) with no sign of why. [`spawn_supervised`] catches the panic where the task
//! runs (`futures_util`'s `catch_unwind`, so aborting the task still works) and keeps its
//! message in a [`Panicked`] slot for whoever watches the task: the daemon checks its sinks'
//! every second, and a sink whose task panicked stops it with that message (see the daemon's
//! "A component that panics").

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};

use futures_util::FutureExt;
use tokio::task::JoinHandle;

/// The message of a panic, once the watched task has panicked.
#[derive(Debug, Clone, Default)]
pub struct Panicked(Arc<OnceLock<String>>);

impl Panicked {
    /// The panic's message, if the task panicked.
    pub fn get(&self) -> Option<String> {
        self.0.get().cloned()
    }

    /// Keep `message` (the first panic wins).
    pub fn set(&self, message: String) {
        let _ = self.0.set(message);
    }
}

/// The message of a panic's payload (`panic!` with a literal or with format arguments).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}

/// Spawn `task` on the current tokio runtime; a panic in it ends the task and is kept in
/// `panicked`.
pub fn spawn_supervised<F>(panicked: &Panicked, task: F) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let panicked = panicked.clone();
    tokio::spawn(async move {
        if let Err(payload) = AssertUnwindSafe(task).catch_unwind().await {
            panicked.set(panic_message(payload.as_ref()));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_kept_and_ends_the_task() {
        let panicked = Panicked::default();
        let t = spawn_supervised(&panicked, async { panic!("the task's bug {}", 7) });
        t.await.expect("the panic does not reach the handle");
        assert_eq!(panicked.get().as_deref(), Some("the task's bug 7"));
    }

    #[tokio::test]
    async fn a_task_that_returns_leaves_nothing() {
        let panicked = Panicked::default();
        spawn_supervised(&panicked, async {}).await.unwrap();
        assert_eq!(panicked.get(), None);
    }

    #[tokio::test]
    async fn aborting_still_stops_the_task() {
        let panicked = Panicked::default();
        let t = spawn_supervised(&panicked, std::future::pending());
        t.abort();
        assert!(t.await.unwrap_err().is_cancelled());
        assert_eq!(panicked.get(), None);
    }
}
