/// One group of a model's rules and the captures it applies to.
///
/// Models of real kernels check everything on captures of their own kernel. The 2023
/// proposals (docs/kernel-models.md §4: C1, C2, C3a) never ran in a kernel: replaying a real
/// capture (say an s390 6.1 one) they can still check each table's life (a free of a free
/// half, an exec of a half nobody freed, …), but not the allocator's choices, which were
/// the captured kernel's. A report lists the checks that do not apply; they are metadata,
/// not `Inconclusive` items, and do not change the verdict.
public struct ModelCheck: Sendable, Equatable {
  public enum Scope: String, Sendable {
    /// The life of each table (alloc → free → pending → exec): the same on every kernel
    /// whose captures the model replays.
    case everyReplay = "every-replay"
    /// The allocator's own decisions (which table alloc returns, list or cursor order,
    /// when a page goes back to the buddy allocator): only on captures of the model's own
    /// kernel, or on the model's own simulation.
    case ownAllocator = "own-allocator"
  }
  /// Rule ids (kebab-case, as in `ModelDescriptor.rules`).
  public var rules: [String]
  public var scope: Scope
  /// One line: what the group checks, or why it needs the model's own allocator.
  public var why: String
  public init(_ scope: Scope, _ rules: [RuleID], _ why: String) {
    self.scope = scope
    self.rules = rules.map(\.rawValue)
    self.why = why
  }
}

extension ModelDescriptor {
  /// Whether this model can replay a capture of the kernel that model `kernelModel` encodes.
  public func canReplay(captureOf kernelModel: String) -> Bool {
    (!simulationOnly && kernelModel == id) || replayableOn.contains(kernelModel)
  }

  /// The checks that do not apply when this model replays a capture of `kernelModel`'s
  /// kernel: none for its own kernel, the `.ownAllocator` ones for another kernel it can
  /// replay, all of them for a kernel it cannot replay.
  public func checksNotApplicable(toCaptureOf kernelModel: String) -> [ModelCheck] {
    if !simulationOnly && kernelModel == id { return [] }
    if replayableOn.contains(kernelModel) { return checks.filter { $0.scope == .ownAllocator } }
    return checks
  }
}
