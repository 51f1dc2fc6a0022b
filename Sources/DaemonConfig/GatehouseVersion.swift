/// The release of this build. `gatehouse --version`, the `gatehouse_build_info` metric and `/readyz` all report it,
/// so an operator can tell which build answers.
public enum GatehouseVersion {
    public static let current = "0.9.0"
}
