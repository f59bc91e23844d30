//! A session's worker process (see `gridplay_host::worker`): what the host
//! starts for each session when it runs from this crate's own tests.

fn main() -> std::process::ExitCode {
    match gridplay_host::worker::worker_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gridplay-worker: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
