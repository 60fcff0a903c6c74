//! The `stock-bridge` binary: see the library docs.

fn main() -> std::process::ExitCode {
    stock_bridge::cli::main()
}
