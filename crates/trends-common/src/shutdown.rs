//! Graceful shutdown.
//!
//! Each service runs its work as tasks that watch one [`CancellationToken`]. The token is
//! cancelled by SIGTERM or Ctrl-C ([`cancel_on_signal`]) or by the first task that fails
//! ([`TaskGroup`]), so a service never limps on with half of itself dead.

use std::future::Future;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received Ctrl-C, shutting down"),
        () = term => tracing::info!("received SIGTERM, shutting down"),
    }
}

/// Spawns a task that cancels `token` on SIGTERM or Ctrl-C.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        if token.run_until_cancelled(signal()).await.is_some() {
            token.cancel();
        }
    });
}

/// Tasks that live and die together: the first error cancels the shared token.
#[derive(Debug)]
pub struct TaskGroup {
    token: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl TaskGroup {
    pub fn new(token: CancellationToken) -> Self {
        TaskGroup {
            token,
            tasks: JoinSet::new(),
        }
    }

    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Runs a task; its name prefixes its error.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.tasks
            .spawn(async move { task.await.map_err(|e| e.context(format!("{name} failed"))) });
    }

    /// Waits for all tasks; returns the first error after cancelling the others.
    pub async fn join(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let result = joined.map_err(anyhow::Error::from).and_then(|r| r);
            if let Err(e) = result {
                tracing::error!(
                    error = format!("{e:#}"),
                    "task failed, stopping the service"
                );
                self.token.cancel();
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
