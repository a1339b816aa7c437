use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = nashmp::cli::Cli::parse();
    match nashmp::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
