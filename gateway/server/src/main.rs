fn main() -> std::process::ExitCode {
    vigie_gateway::cli::main()
}
