// The error type of the library: every failure names what was wrong and, where it helps, what to do.

/// Errors thrown by LadonCore and LadonCheckpoint.
///
/// Each case names a domain (weights file, entropy coding, config, input, checkpoint, packet geometry) and carries
/// a reason enum with the values involved, so a caller can switch on what went wrong:
///
/// ```swift
/// do { model = try LadonModel(path: path) } catch {
///     switch error {
///     case .weights(_, .unsupportedFormatVersion): print("convert the checkpoints again")
///     case .weights(let file, .unreadable(let reason)): print("\(file): \(reason)")
///     default: print(error)
///     }
/// }
/// ```
///
/// `description` is the full human message.
public enum LadonError: Error, Equatable, Sendable {
    /// A weights file, or a tensor in it, is unusable.
    case weights(file: String, WeightsProblem)
    /// A named tensor is missing from a weights file.
    case missingTensor(name: String, file: String)
    /// A named tensor has the wrong shape.
    case shapeMismatch(name: String, expected: [Int], actual: [Int])
    /// An entropy-coded stream, a latent or the coding tables are invalid.
    case entropy(EntropyProblem)
    /// A model configuration is invalid.
    case config(ConfigProblem)
    /// An input (image, tensor, latent) is unusable.
    case invalidInput(InputProblem)
    /// A PyTorch checkpoint cannot be read or mapped; `file` is its path or name where one is known.
    case checkpoint(file: String?, CheckpointProblem)
    /// An encoded image (packet) was made by another model: `packetModel` is the id it carries (the server's own
    /// id is deliberately not part of the error; servers publish it separately).
    case wrongModel(packetModel: String)
    /// An encoded image's sizes do not follow from its original size under this model's preprocessing.
    case geometry(GeometryProblem)
}

extension LadonError {
    /// Why a weights file (safetensors, Ladon metadata) is unusable.
    public enum WeightsProblem: Equatable, Sendable {
        /// The file cannot be read (missing, unreadable, too large).
        case unreadable(reason: String)
        /// The file cannot be written.
        case unwritable(reason: String)
        /// The file is shorter than the 8-byte safetensors header length.
        case tooShort(bytes: Int)
        /// The header length does not fit the file.
        case invalidHeaderLength(UInt64, fileBytes: Int)
        /// The header is not the JSON a safetensors file has (`detail` says how).
        case malformedHeader(detail: String)
        /// A tensor has a dtype this reader does not support.
        case unsupportedDType(tensor: String, dtype: String)
        /// A tensor has more dimensions than accepted.
        case tooManyDimensions(tensor: String, rank: Int, limit: Int)
        /// A tensor's shape is not a list of non-negative sizes.
        case invalidShape(tensor: String, shape: String)
        /// A tensor's data lies (partly) outside the file (`detail` gives the offsets or the shape).
        case dataOutOfBounds(tensor: String, detail: String)
        /// A tensor's byte range does not match its shape and dtype.
        case byteCountMismatch(tensor: String, bytes: Int, needed: Int, shape: [Int], dtype: String)
        /// Two tensors share bytes.
        case overlappingTensors(String, Range<Int>, String, Range<Int>)
        /// An integer tensor was asked for, but the tensor holds another dtype.
        case notIntegerTensor(tensor: String, dtype: String)
        /// The file carries no `config` metadata.
        case noConfig
        /// A metadata value is not what its key needs (`expected` names the form).
        case malformedMetadata(key: String, expected: String)
        /// The file was written by another version of the format.
        case unsupportedFormatVersion(found: String, supported: String)
        /// The file is not a Ladon weights file (its `format` metadata, if any).
        case notLadonFile(format: String?)
        /// The metadata `kind` is neither `full` nor `device`.
        case unknownKind(String)
        /// The fingerprint is not 64 lower-case hex digits.
        case malformedFingerprint(String)
        /// The file has no encoder tensors to split off.
        case noEncoderTensors
        /// The file is a device file (encoder only) where the whole model is needed.
        case deviceFileOnly
        /// The entropy bottleneck's tables and the config disagree on the latent channel count.
        case bottleneckChannelMismatch(tables: Int, config: Int)
    }

    /// Why entropy coding failed: a damaged stream, symbols or tables that do not fit.
    public enum EntropyProblem: Equatable, Sendable {
        /// A rANS stream is a whole number of 32-bit words and at least 8 bytes.
        case invalidStreamLength(bytes: Int)
        /// The stream's initial state is outside [2^31, 2^63).
        case invalidInitialState(UInt64)
        /// The stream ended while decoding `symbol`.
        case truncatedStream(symbol: Int)
        /// A symbol's escape payload is longer than 7 nibbles.
        case escapeTooLong(symbol: Int, nibbles: UInt32)
        /// A symbol's escape payload starts with a zero nibble, which no encoder writes.
        case nonCanonicalEscape(symbol: Int)
        /// The stream did not end in the initial state, or has unread words.
        case trailingData(finalState: UInt64, unreadWords: Int)
        /// The stream is too short for the number of symbols asked for.
        case streamTooShort(bytes: Int, symbols: Int)
        /// Symbols and their channel indexes differ in number.
        case indexCountMismatch(symbols: Int, indexes: Int)
        /// Symbols do not form `channels` planes of `planeSize`.
        case planeMismatch(symbols: Int, channels: Int, planeSize: Int)
        /// The plane size is negative or `channels · planeSize` overflows.
        case invalidPlaneSize(Int)
        /// A channel index (of `symbol`, where known) is outside the tables.
        case indexOutOfRange(index: Int32, symbol: Int?, channels: Int)
        /// A symbol is outside its channel's codable range.
        case symbolOutOfRange(symbol: Int32, position: Int, channel: Int, codable: ClosedRange<Int32>)
        /// The tables have no channels.
        case emptyTables
        /// The table arrays disagree on the channel count.
        case tableCountMismatch(offsets: Int, cdfLengths: Int, cdfRows: Int)
        /// One channel's CDF or offset is invalid (`reason` says how).
        case invalidCDF(channel: Int, reason: String)
        /// A checkpoint tensor that holds the coding tables is empty (saved before `update()`).
        case tablesNotBuilt(tensor: String)
        /// The stored tables do not match the channel count.
        case tableShapeMismatch(scope: String, channels: Int, offsets: Int, cdfLengths: Int, cdfShape: [Int])
        /// A table value does not fit Int32.
        case valueOutOfRange(tensor: String, value: Int)
        /// Medians and table channels differ in number.
        case medianCountMismatch(medians: Int, channels: Int)
        /// A channel's median is not finite.
        case invalidMedian(channel: Int, value: Float)
        /// Symbols cannot be laid out as `shape`.
        case dequantizeShapeMismatch(symbols: Int, shape: [Int], channels: Int)
        /// The latent size is not positive or overflows.
        case invalidLatentSize(height: Int, width: Int)
        /// A compressed latent and the tables differ in channels.
        case latentChannelMismatch(latent: Int, tables: Int)
        /// A probability mass function cannot be turned into a quantised CDF (`reason` says why).
        case invalidPMF(reason: String)
        /// A channel's quantiles give no usable symbol range.
        case unusableQuantiles(channel: Int, low: Float, median: Float, high: Float)
        /// A channel would code more symbols than a CDF can hold.
        case tooManySymbols(channel: Int, count: Int)
    }

    /// Why a model configuration is invalid.
    public enum ConfigProblem: Equatable, Sendable {
        /// A field breaks its bound or form; `model` is the architecture name where known.
        case invalidValue(model: String?, field: String, requirement: String)
        /// A config file cannot be read.
        case unreadable(path: String, reason: String)
        /// The JSON is larger than a config may be.
        case tooLarge(source: String, bytes: Int, limit: Int)
        /// The JSON is nested deeper than a config.
        case tooDeeplyNested(source: String)
        /// The JSON does not decode as a config.
        case notAConfig(source: String, reason: String)
        /// The body kind is not one this build has.
        case unsupportedBody(name: String)
        /// A head is needed (by `neededBy`) but the model has none.
        case missingHead(String, neededBy: String)
        /// A checkpoint for a head was given, but the model has no such head.
        case unexpectedHead(model: String, head: String)
    }

    /// Why an input is unusable.
    public enum InputProblem: Equatable, Sendable {
        /// A tensor has the wrong shape (`expected` describes the form).
        case tensorShape(expected: String, actual: [Int])
        /// The RGB byte count does not match the size (`expected` is nil when width·height·3 overflows).
        case rgbByteCount(width: Int, height: Int, expected: Int?, actual: Int)
        /// An image cannot be resized to `minSize` (a side would become 0 or exceed 2^20).
        case unresizable(width: Int, height: Int, minSize: Int)
        /// A batch of one was expected.
        case batchSize(Int)
        /// The latent holds NaN or infinity at `index` ([N, C, H, W]).
        case nonFiniteLatent(index: [Int])
        /// The detection head got `count` feature maps, not `expected`.
        case featureCount(count: Int, expected: Int)
        /// Detection feature `index` has the wrong shape.
        case featureShape(index: Int, shape: [Int], channels: Int)
        /// Detection sizes (`[h, w]`) are not positive or the image does not fit the padded size.
        case detectionSizes(image: [Int], padded: [Int], original: [Int])
    }

    /// Why a PyTorch checkpoint cannot be read or mapped.
    public enum CheckpointProblem: Equatable, Sendable {
        /// The file cannot be read.
        case unreadable(reason: String)
        /// A torch < 1.6 (legacy) file.
        case legacyFormat
        /// Not a torch.save zip file.
        case notTorchZip(reason: String)
        /// A TorchScript archive.
        case torchScript
        /// No `<archive>/data.pkl` record.
        case noDataPickle
        /// More than one `data.pkl` record.
        case multipleDataPickles(Int)
        /// Written on a machine of another byte order (`order` as the file names it).
        case unsupportedByteOrder(String)
        /// The pickle is larger than accepted.
        case pickleTooLarge(bytes: Int, limit: Int)
        /// The pickle is damaged or uses unsupported features (`detail` at byte `offset`).
        case damagedPickle(detail: String, offset: Int)
        /// A persistent id was met without a storage resolver.
        case noStorageResolver(persistentID: String)
        /// A persistent id is not `('storage', type, key, location, numel)`.
        case malformedPersistentID(detail: String)
        /// A storage type this reader does not support.
        case unsupportedStorageType(String)
        /// The pickle references a storage whose record is missing.
        case missingStorageRecord(key: String, record: String)
        /// A storage record is smaller than declared.
        case storageTooSmall(key: String, declared: Int, dtype: String, bytes: Int)
        /// A tensor view does not fit its storage (`detail` gives size, stride and offset).
        case invalidTensorView(storage: String, detail: String)
        /// The state dict has a non-string key.
        case nonStringKey(kind: String)
        /// The state dict has a key twice.
        case duplicateKey(String)
        /// No state dict at the top level or under `model`.
        case noStateDict(topLevel: String, keys: [String])
        /// A tensor holds an integer outside Int32.
        case valueOutOfRange(tensor: String, value: Int64)
        /// A storage holds another dtype than needed (integers).
        case notIntegerStorage(key: String, dtype: String)
        /// A tensor has another dtype family than needed (`expected`: "integer", "floating-point").
        case wrongDType(tensor: String, dtype: String, expected: String)
        /// The zip archive is damaged or not a zip (`detail` says where).
        case damagedZip(detail: String)
        /// A zip entry name appears twice.
        case duplicateZipEntry(String)
        /// A zip entry is missing.
        case missingZipEntry(String)
        /// A zip entry is compressed (torch.save stores entries uncompressed).
        case compressedZipEntry(String, method: UInt16)
        /// A zip entry is encrypted.
        case encryptedZipEntry(String)
        /// A zip entry fails its CRC-32 check.
        case checksumMismatch(entry: String, stored: UInt32, computed: UInt32)
        /// No checkpoint was given.
        case noCheckpoints
        /// The shared body was asked from a slot with no checkpoint.
        case missingBodyCheckpoint(slot: String)
        /// A checkpoint given for one slot looks like another slot's (`keys` summarises its keys).
        case wrongSlot(given: String, detected: String, keys: String)
        /// Two checkpoint keys map to the same weights-file name.
        case keyCollision(String, String, target: String)
        /// A checkpoint has no Ladon tensors for its slot.
        case noLadonTensors(slot: String, keys: String)
        /// A checkpoint tensor is not part of the architecture.
        case unknownCheckpointKey(key: String, mapped: String, architecture: String)
        /// The bottleneck width differs from the config's (`otherBackbone`: the backbone it fits, if known).
        case bottleneckChannels(found: Int, expected: Int, architecture: String, otherBackbone: String?)
        /// A block of one backbone in a checkpoint converted for another.
        case wrongBackbone(key: String, block: String, architecture: String, body: String, convertWith: String)
    }

    /// Why an encoded image's sizes are not this model's.
    public enum GeometryProblem: Equatable, Sendable {
        /// The latent's channel count is not the model's.
        case latentChannels(packet: Int, model: Int)
        /// The original size is outside 1 ... `maxPixels` pixels.
        case originalSizeOutOfRange(width: Int, height: Int, maxPixels: Int)
        /// The image is too thin for this model's preprocessing.
        case tooThin(width: Int, height: Int)
        /// The sizes do not follow from the original size (`found` and `expected` describe both).
        case inconsistentSizes(width: Int, height: Int, found: String, expected: String)
    }
}

extension LadonError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .weights(let file, let p): return "weights: \(p.message(file: file))"
        case .missingTensor(let name, let file):
            return "weights: tensor '\(name)' is missing from \(file); convert the checkpoints again with `ladon convert`"
        case .shapeMismatch(let name, let expected, let actual):
            return "weights: tensor '\(name)' has shape \(actual), expected \(expected)"
        case .entropy(let p): return "entropy coding: \(p.message)"
        case .config(let p): return "config: \(p.message)"
        case .invalidInput(let p): return "input: \(p.message)"
        case .checkpoint(let file, let p): return "checkpoint: \(p.message(file: file))"
        case .wrongModel(let id):
            return "packet was made by model \(id), not by the model this server runs; encode with the same converted weights (or the device file split from them) that the server loads"
        case .geometry(let p): return "packet geometry: \(p.message)"
        }
    }
}

extension LadonError.WeightsProblem {
    func message(file: String) -> String {
        let damaged = "the file is damaged or not safetensors"
        switch self {
        case .unreadable(let reason): return "cannot read \(file): \(reason)"
        case .unwritable(let reason): return "cannot write \(file): \(reason)"
        case .tooShort(let n): return "\(file) is \(n) bytes, too short for a safetensors header (need at least 8)"
        case .invalidHeaderLength(let n, let size): return "\(file): header length \(n) is impossible for a \(size)-byte file; \(damaged)"
        case .malformedHeader(let detail): return "\(file): \(detail); \(damaged)"
        case .unsupportedDType(let t, let d): return "\(file): tensor '\(t)' has unsupported dtype \(d)"
        case .tooManyDimensions(let t, let rank, let limit):
            return "\(file): tensor '\(t)' has \(rank) dimensions, more than the \(limit) accepted"
        case .invalidShape(let t, let shape): return "\(file): tensor '\(t)' has an invalid shape \(shape)"
        case .dataOutOfBounds(let t, let detail): return "\(file): tensor '\(t)' \(detail)"
        case .byteCountMismatch(let t, let bytes, let needed, let shape, let dtype):
            return "\(file): tensor '\(t)' has \(bytes) bytes but shape \(shape) of \(dtype) needs \(needed)"
        case .overlappingTensors(let a, let ra, let b, let rb):
            return "\(file): tensors '\(a)' (bytes \(ra)) and '\(b)' (bytes \(rb)) overlap; the file is damaged"
        case .notIntegerTensor(let t, let d): return "\(file): tensor '\(t)' is \(d), expected an integer dtype"
        case .noConfig:
            return "\(file) has no 'config' metadata; pass a config (Configs/ladon-resnet50.json) or convert the checkpoints with `ladon convert`"
        case .malformedMetadata(let key, let expected): return "\(file): metadata '\(key)' is not \(expected)"
        case .unsupportedFormatVersion(let found, let supported):
            return "\(file) has format_version \(found); this build reads version \(supported). Convert the checkpoints again with this version of `ladon convert`"
        case .notLadonFile(let format):
            return "\(file) is not a Ladon weights file (metadata format = \(format ?? "absent")); convert the checkpoints with `ladon convert`"
        case .unknownKind(let kind): return "\(file) has metadata kind '\(kind)', expected 'full' or 'device'"
        case .malformedFingerprint(let fp):
            return "\(file) has a malformed fingerprint '\(fp.prefix(80))' (expected 64 lower-case hex digits)"
        case .noEncoderTensors: return "\(file) has no encoder tensors (encoder.encoder.*) to split off"
        case .deviceFileOnly:
            return "\(file) is a device file (encoder only); the server needs the whole model from `ladon convert`"
        case .bottleneckChannelMismatch(let tables, let config):
            return "\(file): entropy bottleneck has \(tables) channels, config says \(config)"
        }
    }
}

extension LadonError.EntropyProblem {
    var message: String {
        let otherTables = "was coded with other tables or another shape"
        switch self {
        case .invalidStreamLength(let n): return "a rANS stream is a whole number of 32-bit words and at least 8 bytes; got \(n) bytes"
        case .invalidInitialState(let x):
            return "the stream's initial state 0x\(String(x, radix: 16)) is outside [2^31, 2^63); the data is not a CompressAI rANS stream"
        case .truncatedStream(let i): return "the stream ended while decoding symbol \(i); it is truncated or \(otherTables)"
        case .escapeTooLong(let i, let n):
            return "symbol \(i) has an escape payload of \(n) nibbles (at most 7 are valid); the stream is corrupt or was coded with other tables"
        case .nonCanonicalEscape(let i):
            return "symbol \(i) has an escape payload with a leading zero nibble, which no encoder writes; the stream is corrupt"
        case .trailingData(let x, let words):
            return "the stream did not end cleanly (final state 0x\(String(x, radix: 16)), \(words) unread words); it is corrupt, has trailing data, or \(otherTables)"
        case .streamTooShort(let bytes, let n): return "\(bytes) bytes cannot hold \(n) symbols with these tables; the shape or the tables are wrong"
        case .indexCountMismatch(let s, let i): return "\(s) symbols but \(i) indexes"
        case .planeMismatch(let s, let c, let p): return "\(s) symbols do not form \(c) planes of \(p)"
        case .invalidPlaneSize(let n): return "plane size \(n) is invalid"
        case .indexOutOfRange(let index, let symbol, let channels):
            return "index \(index)\(symbol.map { " of symbol \($0)" } ?? "") is not a channel of the \(channels)-channel tables"
        case .symbolOutOfRange(let s, let i, let c, let codable): return "symbol \(s) at \(i) is outside channel \(c)'s codable range \(codable)"
        case .emptyTables:
            return "the entropy tables are empty (0 channels); the checkpoint was probably saved before `update()` built them"
        case .tableCountMismatch(let o, let l, let r):
            return "entropy tables disagree on the channel count: \(o) offsets, \(l) CDF lengths, \(r) CDF rows"
        case .invalidCDF(let c, let reason): return "channel \(c): \(reason)"
        case .tablesNotBuilt(let t):
            return "\(t) is empty: the checkpoint was saved before EntropyBottleneck.update() built its coding tables. Use a checkpoint saved after update(), or build them explicitly with EntropyBottleneck(rebuildingTablesFrom:) (may be incompatible with other CompressAI versions)"
        case .tableShapeMismatch(let scope, let channels, let o, let l, let shape):
            return "\(scope): tables do not match \(channels) channels: _offset \(o), _cdf_length \(l), _quantized_cdf \(shape)"
        case .valueOutOfRange(let t, let v): return "\(t) holds \(v), outside Int32"
        case .medianCountMismatch(let m, let c): return "\(m) medians for \(c) table channels"
        case .invalidMedian(let c, let v): return "the median of channel \(c) is \(v)"
        case .dequantizeShapeMismatch(let n, let shape, let c):
            return "\(n) symbols cannot be dequantized as \(shape); expected [N, \(c), H, W] with N·\(c)·H·W elements"
        case .invalidLatentSize(let h, let w): return "latent size \(h)×\(w) is invalid"
        case .latentChannelMismatch(let l, let t): return "the compressed latent has \(l) channels, the tables \(t)"
        case .invalidPMF(let reason): return reason
        case .unusableQuantiles(let c, let low, let median, let high):
            return "channel \(c): quantiles \([low, median, high]) give an unusable range"
        case .tooManySymbols(let c, let n): return "channel \(c): \(n) symbols is too many"
        }
    }
}

extension LadonError.ConfigProblem {
    var message: String {
        switch self {
        case .invalidValue(let model, let field, let requirement):
            return "\(model.map { "\($0.prefix(LadonModelConfig.Limits.nameLength)): " } ?? "")\(field) \(requirement)"
        case .unreadable(let path, let reason): return "cannot read \(path): \(reason)"
        case .tooLarge(let source, let n, let limit): return "\(source) is \(n) bytes, more than the \(limit) a model config may have"
        case .tooDeeplyNested(let source): return "\(source) is nested deeper than a model config (8 levels); it is not a Ladon model config"
        case .notAConfig(let source, let reason): return "\(source) is not a valid Ladon model config: \(reason)"
        case .unsupportedBody(let name): return "body '\(name.prefix(128))' is not supported"
        case .missingHead(let head, let neededBy): return "the model has no \(head) head; \(neededBy) needs one"
        case .unexpectedHead(let model, let head): return "\(model) has no \(head) head, but a \(head) checkpoint was given"
        }
    }
}

extension LadonError.InputProblem {
    var message: String {
        switch self {
        case .tensorShape(let expected, let actual): return "expected \(expected), got \(actual)"
        case .rgbByteCount(let w, let h, let expected, let actual):
            return "expected \(w)x\(h)x3 = \(expected.map(String.init) ?? "too many") RGB bytes, got \(actual)"
        case .unresizable(let w, let h, let minSize):
            return "image \(w)x\(h) cannot be resized to \(minSize) (a side would become 0 or is over 2^20)"
        case .batchSize(let n): return "expected a batch of one latent, got \(n)"
        case .nonFiniteLatent(let index):
            return "the latent holds a non-finite value at \(index); the encoder produced NaN or infinity"
        case .featureCount(let n, let expected): return "detection: \(n) feature maps, expected \(expected)"
        case .featureShape(let i, let shape, let c): return "detection: feature \(i) has shape \(shape), expected [1, \(c), h, w]"
        case .detectionSizes(let image, let padded, let original):
            return "detection: sizes must be positive and the image size \(image) within the padded size \(padded) (original size \(original))"
        }
    }
}

extension LadonError.CheckpointProblem {
    func message(file: String?) -> String {
        let f = file ?? "checkpoint"
        switch self {
        case .unreadable(let reason): return "cannot read \(f): \(reason)"
        case .legacyFormat:
            return "\(f) uses the legacy (torch < 1.6) serialization format, which is not supported; re-save it with torch >= 1.6: `torch.save(torch.load(path, weights_only=False), new_path)`"
        case .notTorchZip(let reason): return "\(f) is not a readable torch.save zip file: \(reason)"
        case .torchScript: return "\(f) is a TorchScript archive (torch.jit.save); save the model's state_dict with torch.save instead"
        case .noDataPickle: return "\(f) has no '<archive>/data.pkl' record; it is not a torch.save checkpoint"
        case .multipleDataPickles(let n): return "\(f) holds \(n) data.pkl records; expected one"
        case .unsupportedByteOrder(let order):
            return "\(f) was written on a \(order)-endian machine; only little-endian checkpoints are supported"
        case .pickleTooLarge(let n, let limit): return "\(f): the pickle is \(n) bytes, more than the \(limit) accepted"
        case .damagedPickle(let detail, let offset):
            return "\(f): \(detail) (at byte \(offset)); the pickle is damaged or uses unsupported features"
        case .noStorageResolver(let kind): return "persistent id \(kind) found but no storage resolver given"
        case .malformedPersistentID(let detail): return "\(f): \(detail)"
        case .unsupportedStorageType(let t): return "\(f): unsupported storage type \(t)"
        case .missingStorageRecord(let key, let record):
            return "\(f): the pickle references storage '\(key)', but the record '\(record)' is missing; the file is damaged"
        case .storageTooSmall(let key, let declared, let dtype, let bytes):
            return "\(f): storage '\(key)' declares \(declared) \(dtype) elements but its record holds only \(bytes) bytes"
        case .invalidTensorView(let storage, let detail): return "\(file.map { "\($0): " } ?? "")tensor on storage '\(storage)': \(detail)"
        case .nonStringKey(let kind): return "\(f): state dict has a non-string key (\(kind))"
        case .duplicateKey(let key): return "\(f): state dict has '\(key)' twice"
        case .noStateDict(let top, let keys):
            return "\(f): no state dict found (top-level \(top) with keys \(keys); expected tensors at the top level or under 'model')"
        case .notIntegerStorage(let key, let dtype): return "\(f): tensor on storage '\(key)' is \(dtype), expected an integer type"
        case .valueOutOfRange(let t, let v): return "\(f): tensor '\(t)' holds \(v), outside the Int32 range"
        case .wrongDType(let t, let d, let expected): return "\(f): '\(t)' is \(d), expected \(expected == "integer" ? "an" : "a") \(expected) tensor"
        case .damagedZip(let detail): return "\(f): \(detail); the file is damaged or not a zip archive"
        case .duplicateZipEntry(let name): return "\(f): duplicate zip entry '\(name)'"
        case .missingZipEntry(let name): return "\(f): zip entry '\(name)' is missing"
        case .compressedZipEntry(let name, let method):
            return "\(f): zip entry '\(name)' is \(method == 8 ? "DEFLATE-compressed" : "compressed with method \(method)"); only stored entries are supported (torch.save writes them uncompressed: re-save the checkpoint with torch.save instead of re-zipping it)"
        case .encryptedZipEntry(let name): return "\(f): zip entry '\(name)' is encrypted, which is not supported"
        case .checksumMismatch(let entry, let stored, let computed):
            return "\(f): zip entry '\(entry)' fails its CRC-32 check (stored \(String(stored, radix: 16)), computed \(String(computed, radix: 16))); the file is damaged"
        case .noCheckpoints: return "no checkpoint given: the shared body must come from one of the three files"
        case .missingBodyCheckpoint(let slot): return "the shared body was requested from the \(slot) checkpoint, but none was given"
        case .wrongSlot(let given, let detected, let keys):
            return "\(f) was given as the \(given) checkpoint but looks like a \(detected) checkpoint (keys \(keys))"
        case .keyCollision(let a, let b, let target): return "\(f): keys '\(a)' and '\(b)' both map to '\(target)'"
        case .noLadonTensors(let slot, let keys): return "\(f) has no Ladon \(slot) tensors (keys \(keys))"
        case .unknownCheckpointKey(let key, let mapped, let architecture):
            return "\(f): tensor '\(key)' (→ '\(mapped)') is not part of \(architecture); the checkpoint does not match the config"
        case .bottleneckChannels(let found, let expected, let architecture, let other):
            let hint = other.map { " (a \($0) Ladon checkpoint? convert it with --backbone \($0))" } ?? ""
            return "\(f): the bottleneck has \(found) channels\(hint), but \(architecture) expects \(expected)"
        case .wrongBackbone(let key, let block, let architecture, let body, let convertWith):
            return "\(f): key '\(key)' is a \(block) block, but \(architecture) has a \(body) body; convert it with --backbone \(convertWith)"
        }
    }
}

extension LadonError.GeometryProblem {
    var message: String {
        switch self {
        case .latentChannels(let p, let m): return "latent has \(p) channels, this model codes \(m)"
        case .originalSizeOutOfRange(let w, let h, let maxPixels): return "original size \(w)x\(h) is outside 1 ... \(maxPixels) pixels"
        case .tooThin(let w, let h): return "an image of \(w)x\(h) is too thin for this model's preprocessing"
        case .inconsistentSizes(let w, let h, let found, let expected):
            return "sizes do not follow from the original \(w)x\(h): got \(found); this model's preprocessing gives \(expected)"
        }
    }
}
