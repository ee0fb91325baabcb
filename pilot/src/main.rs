fn main() -> anyhow::Result<()> {
    mesh_pilot::cli::main()
}
