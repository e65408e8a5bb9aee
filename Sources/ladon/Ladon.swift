import ArgumentParser
import LadonCore

@main
struct Ladon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ladon",
        abstract: "Ladon split-computing inference: classification, detection and segmentation from one encoder.",
        subcommands: [Convert.self])
}
