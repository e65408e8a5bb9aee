// Read and idle timeouts per connection, enforced in the channel pipeline after HTTP decoding.
import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Closes a connection that is too slow to send its request or that sits idle between requests.
///
/// - From the connection's start or the end of the last response, the next request must begin within
///   `idleTimeout`.
/// - From a request's head, its whole body must arrive within `readTimeout` (a slow-loris client or a stalled
///   partial upload is cut off, however it trickles).
/// - While the server works on a request there is no timer here: the per-request deadline covers that.
final class ConnectionTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let readTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private var timer: Scheduled<Void>?
    private let onTimeout: @Sendable (_ reading: Bool) -> Void

    init(readTimeout: TimeAmount, idleTimeout: TimeAmount, onTimeout: @escaping @Sendable (Bool) -> Void = { _ in }) {
        self.readTimeout = readTimeout
        self.idleTimeout = idleTimeout
        self.onTimeout = onTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context, idleTimeout, reading: false) }
    }

    func handlerRemoved(context: ChannelHandlerContext) { disarm() }

    func channelActive(context: ChannelHandlerContext) {
        arm(context, idleTimeout, reading: false)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: arm(context, readTimeout, reading: true)
        case .body: break
        case .end: disarm()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { arm(context, idleTimeout, reading: false) }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext, _ timeout: TimeAmount, reading: Bool) {
        disarm()
        let onTimeout = self.onTimeout
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            onTimeout(reading)
            loopBound.value.close(promise: nil)
        }
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
    }
}
