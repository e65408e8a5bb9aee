// The `ladon` command: a thin front end over LadonCore, LadonImage and EdgeSplit.
import ArgumentParser
import LadonCore

@main
struct Ladon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ladon",
        abstract: "Ladon split-computing inference: ImageNet classification, COCO detection and VOC segmentation from one encoder.",
        version: LadonVersion.current,
        subcommands: [Infer.self, Convert.self, Info.self, Encode.self, Decode.self, SplitModel.self, Serve.self, Send.self])
}
