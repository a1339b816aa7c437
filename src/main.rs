use clap::Parser;

fn main() -> std::process::ExitCode {
    reset_sigpipe();
    let cli = nashmp::cli::Cli::parse();
    match nashmp::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // 128 + SIGINT, as a shell reports a process stopped by Ctrl-C.
            let interrupted = matches!(
                e.downcast_ref::<nashmp::Error>(),
                Some(nashmp::Error::Interrupted(_) | nashmp::Error::InterruptedEarly(_))
            );
            std::process::ExitCode::from(if interrupted { 130 } else { 2 })
        }
    }
}

/// Lets `nashmp … | head` end quietly, as Unix tools do, instead of panicking on a closed pipe.
fn reset_sigpipe() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts; Rust's
    // runtime set it to "ignore", and nothing in nashmp relies on that.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
