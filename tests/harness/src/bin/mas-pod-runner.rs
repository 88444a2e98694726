//! `mas-pod-runner --namespace NS`: runs the pods of NS labelled `test.mas/kubelet=pod-runner`
//! for real (see `mas_harness::pod_runner`) until Ctrl-C or SIGTERM. scripts/demo uses it.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "mas-pod-runner",
    about = "Run labelled pods of the local test cluster as real processes"
)]
struct Cli {
    /// Namespace whose pods to run.
    #[arg(long)]
    namespace: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let client = mas_harness::cluster::client().await;
    let runner = mas_harness::pod_runner::PodRunner::start(
        client,
        &cli.namespace,
        mas_harness::pod_runner::default_images(),
    );
    eprintln!(
        "mas-pod-runner: running pods of {} (logs in {})",
        cli.namespace,
        runner.log_dir.display()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    runner.shutdown().await;
    Ok(())
}
