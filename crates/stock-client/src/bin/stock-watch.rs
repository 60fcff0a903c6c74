//! `stock-watch`: the client core in a terminal, for support staff. See [`stock_client::watch`].

fn main() -> std::process::ExitCode {
    stock_client::watch::main()
}
