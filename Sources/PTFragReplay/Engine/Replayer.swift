import PTFragEvents

/// Everything a replay produced, for the reporters.
public struct ReplayResult: Sendable {
  public var model: ModelDescriptor
  /// Findings sorted by line (then rule).
  public var findings: [Finding]
  /// Inconclusive items sorted by line.
  public var inconclusive: [Inconclusive]
  /// Exact finding counts by rule (including those beyond the detail cap).
  public var countsByRule: [String: Int]
  public var droppedFindings: [String: Int]
  public var droppedInconclusive: Int
  /// Of those, the ones nothing explains (no profile, or its budget spent): they make the
  /// replay inconclusive as kept unexplained items do.
  public var droppedUnexplained: Int = 0
  public var stats: ReplayStats
  /// Events replayed (normalized events, not lines).
  public var events: Int
  /// Whether the capture lost events (markers or an overwritten ring buffer).
  public var lossReason: String?

  public var unexplainedInconclusive: Int {
    inconclusive.filter { $0.explainedBy == nil }.count + droppedUnexplained
  }

  /// Why `rule` could not be checked on this capture (nil: it was). A rule that cannot be
  /// checked neither passed nor failed; reports show it as skipped with this reason.
  public func unmetRequirement(of rule: Rule) -> String? {
    switch rule.requires {
    case nil: return nil
    case .predictedAllocations?:
      guard stats.allocationsPredicted == 0 else { return nil }
      return
        "no allocation could be predicted (\(stats.allocationsUnverified) unverified): the capture holds no allocation of an mm born in it"
    }
  }
}

/// Drives one model over a stream of normalized events and settles the result:
/// losses downgrade findings to inconclusive; a kprobe_profile explains missed-exec items.
public final class Replayer {
  public let context: ReplayContext
  public let model: any AllocatorModel
  public let descriptor: ModelDescriptor
  @exclusivity(unchecked) private var events = 0
  @exclusivity(unchecked) private var lastLine = 0

  public init(model type: any AllocatorModel.Type) {
    context = ReplayContext()
    model = type.init(context: context)
    descriptor = type.descriptor
  }

  @inline(__always)
  public func apply(_ e: Event) {
    events += 1
    if e.line > lastLine { lastLine = e.line }
    model.apply(e)
    if e.kind != .lost { observe(e.timestampNs) }
  }

  /// Samples the occupancy after an event stamped `ns`: totals, plot series, touched mms.
  @inline(__always)
  func observe(_ ns: UInt64) {
    let o = model.occupancy
    context.stats.occupancy.observe(o, atNs: ns)
    context.stats.series.observe(o, atNs: ns)
    context.mmBook.commit(atNs: ns)
  }

  /// Ends the replay. `overwritten` = entries the ring buffer dropped per the header;
  /// `profileMisses` = silent misses per probed function from a kprobe_profile (nil: none
  /// given, so misses stay possible and items that hinge on them stay open).
  /// `damagedEvents` = malformed input lines that name a probed function (events that may be
  /// missing, like lost ones); `valuelessEvents` = probe lines that lack a value their event
  /// needs (a return without its `table=`: the event is missing too).
  public func finish(
    overwritten: UInt64 = 0, profileMisses: [KernelFunction: UInt64]? = nil, damagedEvents: Int = 0,
    valuelessEvents: Int = 0
  ) -> ReplayResult {
    model.finish(lastLine: lastLine)
    context.foldKindCounts()
    let endNs = context.stats.occupancy.lastNs
    context.stats.perMM = context.mmBook.records(endNs: endNs)
    context.stats.perMMDropped = context.mmBook.dropped(endNs: endNs)
    var findings = context.findings
    var inconclusive: [Inconclusive] = []
    // Items that hinge on a probe's silent misses: settled by the profile.
    var budget = profileMisses ?? [:]
    // Items that only one probe's miss explains are charged first: an item that several
    // probes explain must not spend the budget a single-probe item needed (the order of the
    // report is the line order, restored below).
    let settling = context.inconclusive.filter { $0.alternatives.isEmpty }
      + context.inconclusive.filter { !$0.alternatives.isEmpty }
    for var i in settling {
      guard let f = i.hingesOn, let profileMisses else {
        inconclusive.append(i)
        continue
      }
      let probes = [f] + i.alternatives
      if probes.allSatisfy({ (profileMisses[$0] ?? 0) == 0 }) {
        // The probe provably missed nothing: the item is the finding it hinged on (one
        // finding may stand for several items, e.g. both halves of one page).
        if let finding = i.asFinding {
          findings.append(finding)
          context.settle(finding)
        }
      } else if let g = probes.first(where: { budget[$0, default: 0] > 0 }) {
        budget[g]! -= 1
        i.hingesOn = g
        i.explainedBy = "kprobe_profile: \(g.symbol) missed \(profileMisses[g] ?? 0) hit(s)"
        inconclusive.append(i)
      } else {
        inconclusive.append(i)
      }
    }
    // Items beyond the detail cap, settled the same way, in a fixed order.
    var droppedUnexplained = context.droppedOpen
    for (key, d) in context.droppedHinging.sorted(by: { "\($0.key.probes)\($0.key.rule ?? "")" < "\($1.key.probes)\($1.key.rule ?? "")" }) {
      guard let profileMisses else {
        droppedUnexplained += d.count
        continue
      }
      if key.probes.allSatisfy({ (profileMisses[$0] ?? 0) == 0 }) {
        if let finding = d.first {
          // One finding in detail (it fails the gate), all of them counted.
          findings.append(finding)
          context.settle(finding)
          if d.count > 1 { context.countDropped(rule: finding.rule.id, d.count - 1) }
        }
        continue
      }
      var left = d.count
      for g in key.probes where left > 0 {
        let n = min(UInt64(left), budget[g, default: 0])
        budget[g, default: 0] -= n
        left -= Int(n)
      }
      droppedUnexplained += left
    }
    var lossReason: String? = nil
    if context.stats.lostMarkers > 0 {
      lossReason =
        "\(context.stats.lostMarkers) LOST marker(s), \(context.stats.lostEvents) events lost"
    }
    if overwritten > 0 {
      lossReason =
        (lossReason.map { $0 + "; " } ?? "")
        + "the ring buffer overwrote \(overwritten) entries (entries-in-buffer < entries-written)"
    }
    if damagedEvents > 0 {
      lossReason =
        (lossReason.map { $0 + "; " } ?? "")
        + "\(damagedEvents) malformed line(s) name a probed function: their events are missing"
    }
    if valuelessEvents > 0 {
      lossReason =
        (lossReason.map { $0 + "; " } ?? "")
        + "\(valuelessEvents) probe line(s) lack a value their event needs: their events are missing"
    }
    if let why = lossReason {
      // A capture with losses cannot support an error verdict on anything a missing event
      // could explain: every model divergence becomes inconclusive.
      var kept: [Finding] = []
      for f in findings {
        if f.rule.severity == .info {
          kept.append(f)
          continue
        }
        var i = Inconclusive(
          reason: .lostEvents, line: f.line, mm: f.mm, page: f.page,
          message: "\(f.message) — not conclusive: the capture lost events (\(why))",
          wouldBeRule: f.rule.key)
        i.history = f.history
        inconclusive.append(i)
        context.forget(rule: f.rule.id)
      }
      findings = kept
      // So do those beyond the detail cap (counted, not kept).
      for r in descriptor.rules where r.severity != .info {
        droppedUnexplained += context.demoteDropped(rule: r.id)
      }
    }
    if events == 0 {
      inconclusive.append(
        Inconclusive(reason: .noEvents, line: lastLine, message: "the capture holds no page-table events: nothing was replayed"))
    }
    findings.sort { ($0.line, $0.rule.id) < ($1.line, $1.rule.id) }
    inconclusive.sort { ($0.line, $0.reason.rawValue) < ($1.line, $1.reason.rawValue) }
    context.rewrite(findings: findings, inconclusive: inconclusive)
    return ReplayResult(
      model: descriptor, findings: findings, inconclusive: inconclusive,
      countsByRule: context.countsByRule, droppedFindings: context.droppedFindings,
      droppedInconclusive: context.droppedInconclusive, droppedUnexplained: droppedUnexplained,
      stats: context.stats, events: events,
      lossReason: lossReason)
  }
}

/// Every model ptfrag knows, by id.
public enum ModelRegistry {
  nonisolated(unsafe) public static let all: [any AllocatorModel.Type] = [
    S390v61Model.self, S390v66Model.self, S390v67Model.self,
    S390HughV2Model.self, S390GeraldModel.self, S390PpcStyleModel.self,
    PowerpcHash64KModel.self, PowerpcRadix64KModel.self, Powerpc8xx16KModel.self,
  ]
  /// Models of kernels with a fix declared (`--kernel-fix`): reachable by id, not listed
  /// among the strategies.
  nonisolated(unsafe) public static let variants: [any AllocatorModel.Type] = [
    PowerpcHash64KFixedModel.self, PowerpcRadix64KFixedModel.self, Powerpc8xx16KFixedModel.self,
  ]
  public static func model(id: String) -> (any AllocatorModel.Type)? {
    all.first { $0.descriptor.id == id } ?? variants.first { $0.descriptor.id == id }
  }
  public static var ids: [String] { all.map { $0.descriptor.id } }
  /// The model `analyze`, `compare` and `synth` use when none is named: the s390 6.1 LTS
  /// allocator (the kernels most captures come from).
  public static var defaultModel: any AllocatorModel.Type { S390v61Model.self }
  /// The model of the mainline `architecture` kernel `major.minor`, if one encodes it.
  public static func model(of architecture: Architecture, _ major: Int, _ minor: Int) -> (any AllocatorModel.Type)? {
    all.first { $0.descriptor.architecture == architecture && $0.descriptor.encodes(major, minor) }
  }

  /// Kernel fixes `--kernel-fix` knows: commit → what it changes and which models it concerns.
  public static let kernelFixes: [(commit: String, models: String, what: String)] = [
    (
      "fda4d71651f7", "powerpc-*",
      "powerpc/pgtable-frag: Fix bad page state in pte_frag_destroy (v7.1, stable backports): pte_frag_destroy clears PG_active, so released-with-active at pte_frag_destroy is no bug"
    )
  ]

  /// The id of model `id` on a kernel with `fixes` (commit ids, 7+ hex digits of a known
  /// fix): `powerpc-radix64k` + fda4d71651f7 → `powerpc-radix64k+fda4d71651f7`. Throws a
  /// message for an unknown fix or one that does not concern the model.
  public static func id(_ id: String, withKernelFixes fixes: [String]) throws(KernelFixError) -> String {
    var out = id
    for fix in fixes {
      let f = fix.lowercased()
      guard f.count >= 7, let known = kernelFixes.first(where: { $0.commit.hasPrefix(f) || f.hasPrefix($0.commit) })
      else {
        throw KernelFixError(
          message: "unknown kernel fix '\(fix)'; known: \(kernelFixes.map { "\($0.commit) (\($0.models))" }.joined(separator: ", "))")
      }
      guard id.hasPrefix("powerpc-") else {
        throw KernelFixError(message: "kernel fix \(known.commit) concerns the powerpc models, not \(id)")
      }
      if !out.hasSuffix("+" + known.commit) { out += "+" + known.commit }
    }
    return out
  }
}

/// A `--kernel-fix` that cannot apply.
public struct KernelFixError: Error, Sendable {
  public var message: String
}
