fn main() -> anyhow::Result<()> {
    mesh_citadel::cli::main()
}
