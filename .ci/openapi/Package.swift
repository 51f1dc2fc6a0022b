// swift-tools-version:6.0
// The tools that turn Sources/AdminAPI/openapi.yaml into Sources/AdminAPI/Generated/ (run by ./regenerate, checked
// in CI). Kept out of the main package so that a build of Gatehouse does not build the generator.
import PackageDescription

let package = Package(
    name: "openapi-tools",
    dependencies: [
        .package(url: "https://github.com/apple/swift-openapi-generator.git", from: "1.14.3"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        .executableTarget(name: "openapi-derive", dependencies: [.product(name: "Yams", package: "Yams")])
    ]
)
