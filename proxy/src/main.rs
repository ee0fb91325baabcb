fn main() -> anyhow::Result<()> {
    mesh_proxy::cli::main()
}
