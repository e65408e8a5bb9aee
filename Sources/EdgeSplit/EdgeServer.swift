// The edge server: receives latent packets over TCP, runs the server half, answers with the results as JSON.
import Foundation
import LadonCore
import NIOCore
import NIOPosix

/// The answer to one packet: `status` is `ok` with a `result`, or `error` with a message saying what was wrong.
public struct EdgeResponse: Codable, Sendable, Equatable {
    public var status: String
    public var error: String?
    public var result: InferenceSummary?

    public static func ok(_ result: InferenceSummary) -> EdgeResponse { EdgeResponse(status: "ok", error: nil, result: result) }
    public static func failure(_ message: String) -> EdgeResponse { EdgeResponse(status: "error", error: message, result: nil) }
}

/// Frames on the wire: a 4-byte big-endian length, then that many bytes (a ``LatentPacket`` from the device,
/// an ``EdgeResponse`` JSON from the server). Frames above `maxFrameLength` close the connection.
struct LengthPrefixedFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let maxFrameLength: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= maxFrameLength else { throw EdgeError.frameTooLarge(Int(length), limit: maxFrameLength) }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }
}

struct LengthPrefixedFrameEncoder: MessageToByteEncoder {
    typealias OutboundIn = ByteBuffer
    func encode(data: ByteBuffer, out: inout ByteBuffer) throws {
        out.writeInteger(UInt32(data.readableBytes))
        out.writeImmutableBuffer(data)
    }
}

/// Transport failures.
public enum EdgeError: Error, Equatable, Sendable, CustomStringConvertible {
    case frameTooLarge(Int, limit: Int)
    case connectionClosed
    case badResponse(String)

    public var description: String {
        switch self {
        case .frameTooLarge(let n, let limit): return "frame of \(n) bytes exceeds the \(limit)-byte limit"
        case .connectionClosed: return "the server closed the connection without answering"
        case .badResponse(let m): return "unreadable server response: \(m)"
        }
    }
}

/// Adds the framing handlers and wraps the channel for async use.
func framedChannel(_ channel: Channel, maxFrameLength: Int) -> EventLoopFuture<NIOAsyncChannel<ByteBuffer, ByteBuffer>> {
    channel.eventLoop.makeCompletedFuture {
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LengthPrefixedFrameDecoder(maxFrameLength: maxFrameLength)))
        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(LengthPrefixedFrameEncoder()))
        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
    }
}

/// A TCP server for the server half. Each connection may send any number of packets; each gets one response.
/// A bad packet gets an `error` response and the connection stays usable; an oversized frame closes it.
public struct EdgeServer: Sendable {
    public let server: ServerHalf
    public let host: String
    public let port: Int
    public let maxFrameLength: Int

    /// - Parameters:
    ///   - host: address to bind; `127.0.0.1` by default (use `0.0.0.0` deliberately to serve the network).
    ///   - port: TCP port; 0 picks a free one (reported through `run(onBound:)`).
    public init(server: ServerHalf, host: String = "127.0.0.1", port: Int,
                maxFrameLength: Int = LatentPacket.headerSize + LatentPacket.maxPayload) {
        self.server = server
        self.host = host
        self.port = port
        self.maxFrameLength = maxFrameLength
    }

    /// Answers one packet (also usable without a network).
    public func respond(to bytes: [UInt8]) -> EdgeResponse {
        do {
            let packet = try LatentPacket(bytes: bytes)
            let result = try server.run(packet)
            return .ok(InferenceSummary(file: "packet", result: result, labels: server.model.labels,
                                        includeLogits: false, maskAtOriginalSize: true))
        } catch {
            return .failure("\(error)")
        }
    }

    /// Serves until the surrounding task is cancelled. `onBound` receives the bound port.
    public func run(onBound: @Sendable (Int) -> Void = { _ in }) async throws {
        let limit = maxFrameLength
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { channel in framedChannel(channel, maxFrameLength: limit) }
        onBound(listener.channel.localAddress?.port ?? port)
        try await withThrowingDiscardingTaskGroup { group in
            try await listener.executeThenClose { connections in
                for try await connection in connections {
                    group.addTask {
                        // A connection that misbehaves (oversized frame, reset) ends alone; the server goes on.
                        try? await connection.executeThenClose { inbound, outbound in
                            for try await frame in inbound {
                                let response = self.respond(to: Array(buffer: frame))
                                try await outbound.write(ByteBuffer(bytes: Self.encode(response)))
                            }
                        }
                    }
                }
            }
        }
    }

    static func encode(_ response: EdgeResponse) -> [UInt8] {
        Array((try? InferenceSummary.jsonEncoder().encode(response)) ?? Data(#"{"status":"error","error":"encoding failed"}"#.utf8))
    }
}

/// The device side of the connection.
public enum EdgeClient {
    /// Sends packets over one connection and returns the server's responses in order.
    public static func send(_ packets: [LatentPacket], host: String, port: Int) async throws -> [EdgeResponse] {
        try await sendFrames(packets.map { $0.serialized() }, host: host, port: port)
    }

    /// Sends raw frames (for tests and tools) and decodes the responses.
    public static func sendFrames(_ frames: [[UInt8]], host: String, port: Int,
                                  maxFrameLength: Int = 64 << 20) async throws -> [EdgeResponse] {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: host, port: port) { channel in framedChannel(channel, maxFrameLength: maxFrameLength) }
        return try await channel.executeThenClose { inbound, outbound in
            var responses: [EdgeResponse] = []
            var iterator = inbound.makeAsyncIterator()
            let decoder = InferenceSummary.jsonDecoder()
            for frame in frames {
                try await outbound.write(ByteBuffer(bytes: frame))
                guard let reply = try await iterator.next() else { throw EdgeError.connectionClosed }
                do {
                    responses.append(try decoder.decode(EdgeResponse.self, from: Data(Array(buffer: reply))))
                } catch {
                    throw EdgeError.badResponse("\(error)")
                }
            }
            return responses
        }
    }
}
