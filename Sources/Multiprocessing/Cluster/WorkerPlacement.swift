// Which node agent runs each worker of a cluster pool: every agent has a quota, a new worker goes
// where most room is left, and a worker that is closed or killed frees its place at once, so that
// its replacement starts on the same node. Pure bookkeeping (rank 0's transport holds it under its
// lock); built without the MPI trait too, so that its tests run in every build.

/// Which agent (by rank) runs each worker of one cluster pool.
struct WorkerPlacement {
    /// Workers each agent runs at most, by rank.
    var quota: [Int: Int]
    /// Where each worker runs.
    var rankOf: [WorkerID: Int] = [:]
    /// Workers per agent that are not on their way out (closed or killed).
    var staying: [Int: Set<WorkerID>] = [:]
}

extension WorkerPlacement {
    /// Picks the agent for a new worker: the one with the most room left under its quota
    /// (a replacement goes where the worker it replaces was); the lowest rank on a tie.
    mutating func place(_ id: WorkerID) -> Int {
        let rank = quota.keys.sorted().max { a, b in
            let roomA = quota[a]! - (staying[a]?.count ?? 0)
            let roomB = quota[b]! - (staying[b]?.count ?? 0)
            return roomA != roomB ? roomA < roomB : a > b
        }!
        rankOf[id] = rank
        staying[rank, default: []].insert(id)
        return rank
    }

    /// The worker is closed or killed: its place is free for a replacement (it still runs on
    /// its agent until it exits).
    /// - Returns: the agent it runs on, if known.
    mutating func leave(_ id: WorkerID) -> Int? {
        guard let rank = rankOf[id] else { return nil }
        staying[rank]?.remove(id)
        return rank
    }

    /// The worker is gone (exited, or never started).
    mutating func remove(_ id: WorkerID) {
        guard let rank = rankOf.removeValue(forKey: id) else { return }
        staying[rank]?.remove(id)
    }
}

extension WorkerPlacement {
    /// What the quota of an agent depends on.
    struct AgentShape {
        var rank: Int
        /// Ranks of the job on the agent's node (rank 0's included).
        var ranksOnNode: Int
        /// CPUs the agent may run on.
        var cpus: Int
    }

    /// How many workers each agent runs, by rank: `processes` spread evenly when given (agents
    /// left with none are left out), else `workersPerRank` each, else one for an agent that
    /// shares its node and the node's CPUs for one alone on it.
    static func quota(for agents: [AgentShape], workersPerRank: Int?, processes: Int?) -> [Int: Int] {
        var quota: [Int: Int] = [:]
        if let processes {
            for (i, agent) in agents.enumerated() {
                quota[agent.rank] = processes / agents.count + (i < processes % agents.count ? 1 : 0)
            }
            return quota.filter { $0.value > 0 }
        }
        for agent in agents {
            quota[agent.rank] = workersPerRank ?? (agent.ranksOnNode > 1 ? 1 : max(1, agent.cpus))
        }
        return quota
    }
}
