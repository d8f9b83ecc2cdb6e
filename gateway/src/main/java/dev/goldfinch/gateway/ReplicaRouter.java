package dev.goldfinch.gateway;

import dev.goldfinch.service.Channels;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Picks a replica of one kind of service (decode, or prefill): healthy (gRPC health, polled), least calls
 * in progress (as counted by this gateway), for decode preferring the replica that last served the same
 * entry (its local LRU holds it) unless it is busier than the least loaded by more than the slack. Replicas come from a static list and from DNS
 * names re-resolved on every health round, so scaling a headless service just works.
 */
public final class ReplicaRouter implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ReplicaRouter.class);

    public static final class Replica {
        final String target;
        final ManagedChannel channel;
        final AtomicInteger live = new AtomicInteger();
        volatile boolean healthy = true;
        /** Health checks in a row that got no answer in time; a busy replica is not a dead one. */
        volatile int unansweredChecks;
        /** Its last health answer was NOT_SERVING (draining, or not ready): no new work, not even in panic. */
        volatile boolean refusesWork;

        Replica(String target, ManagedChannel channel) {
            this.target = target;
            this.channel = channel;
        }

        public String target() {
            return target;
        }

        public ManagedChannel channel() {
            return channel;
        }

        public int live() {
            return live.get();
        }
    }

    /** Unanswered health checks in a row before a replica counts as down (Kubernetes' default failure threshold). */
    static final int UNANSWERED_CHECKS_BEFORE_DOWN = 3;

    private final String kind;
    private final List<String> configured;
    private final ChannelOpener channels;
    private final int slack;
    private final Map<String, Replica> replicas = new ConcurrentHashMap<>();
    private final Map<String, String> affinity = new LinkedHashMap<>(256, 0.75f, true);
    private final ScheduledExecutorService health;

    /** {@code kind} names the service in logs and the health thread ("decode", "prefill"). */
    public ReplicaRouter(String kind, List<String> targets, Duration interval, int slack, ChannelOpener channels) {
        this.kind = kind;
        this.configured = List.copyOf(targets);
        this.channels = channels;
        this.slack = slack;
        this.health = Executors.newSingleThreadScheduledExecutor(
                Thread.ofPlatform().name(kind + "-health").daemon().factory());
        refreshTargets();
        health.scheduleWithFixedDelay(this::refresh, interval.toMillis(), interval.toMillis(), TimeUnit.MILLISECONDS);
    }

    public List<Replica> replicas() {
        return List.copyOf(replicas.values());
    }

    /** The replica for an entry; empty when none is healthy. */
    public Optional<Replica> pick(String entryHash, Replica exclude) {
        return pickAvoiding(entryHash, exclude == null ? Set.of() : Set.of(exclude));
    }

    /** The replica for an entry, none of {@code exclude}; empty when no other is healthy. */
    public Optional<Replica> pickAvoiding(String entryHash, Collection<Replica> exclude) {
        List<Replica> healthy = new ArrayList<>();
        for (Replica r : replicas.values()) {
            if (r.healthy && !exclude.contains(r)) {
                healthy.add(r);
            }
        }
        if (healthy.isEmpty()) {
            return Optional.empty();
        }
        Replica least = healthy.stream()
                .min(Comparator.comparingInt(Replica::live).thenComparing(Replica::target))
                .orElseThrow();
        String preferred;
        synchronized (affinity) {
            preferred = affinity.get(entryHash);
        }
        Replica chosen = least;
        if (preferred != null) {
            Replica p = replicas.get(preferred);
            if (p != null && p.healthy && !exclude.contains(p) && p.live() <= least.live() + slack) {
                chosen = p;
            }
        }
        synchronized (affinity) {
            affinity.put(entryHash, chosen.target);
            if (affinity.size() > 10_000) {
                affinity.remove(affinity.keySet().iterator().next());
            }
        }
        return Optional.of(chosen);
    }

    /** The healthy replica with the fewest calls in progress outside {@code exclude}, for work with no affinity. */
    public Optional<Replica> pickLeastLoaded(Collection<Replica> exclude) {
        return replicas.values().stream()
                .filter(r -> r.healthy && !exclude.contains(r))
                .min(Comparator.comparingInt(Replica::live).thenComparing(Replica::target));
    }

    /**
     * The least loaded replica outside {@code exclude} that has not said NOT_SERVING, healthy or not. Used when no healthy replica is left:
     * health is a poll and may lag (a replica too busy to answer a check in time still serves), so trying one
     * beats refusing outright, as a load balancer's panic mode does. A replica that is really down fails fast
     * with UNAVAILABLE and lands in {@code exclude} for the next try.
     */
    public Optional<Replica> pickDespiteHealth(Collection<Replica> exclude) {
        return replicas.values().stream()
                .filter(r -> !r.refusesWork && !exclude.contains(r))
                .min(Comparator.comparingInt(Replica::live).thenComparing(Replica::target));
    }

    /** A call to this replica failed as unavailable: stop sending it work until the next health round says otherwise. */
    public void markUnavailable(Replica r) {
        r.healthy = false;
    }

    private void refresh() {
        try {
            refreshTargets();
            for (Replica r : replicas.values()) {
                r.healthy = healthAfterCheck(r);
            }
        } catch (RuntimeException e) {
            log.warn("{} health round failed", kind, e);
        }
    }

    private static boolean healthAfterCheck(Replica r) {
        if (!r.healthy) {
            // A refused connection backs the channel off for up to two minutes; a replica that has come up (a
            // restarted pod, or one slower to start than this gateway) should be seen at the next round instead.
            r.channel.resetConnectBackoff();
        }
        try {
            HealthCheckResponse h = HealthGrpc.newBlockingStub(r.channel)
                    .withDeadlineAfter(1, TimeUnit.SECONDS)
                    .check(HealthCheckRequest.getDefaultInstance());
            r.unansweredChecks = 0;
            r.refusesWork = h.getStatus() != HealthCheckResponse.ServingStatus.SERVING;
            return !r.refusesWork;
        } catch (io.grpc.StatusRuntimeException e) {
            if (e.getStatus().getCode() == Status.Code.DEADLINE_EXCEEDED) {
                return r.healthy && ++r.unansweredChecks < UNANSWERED_CHECKS_BEFORE_DOWN;
            }
            r.unansweredChecks = 0;
            return e.getStatus().getCode() == Status.Code.UNIMPLEMENTED; // no health service: trust the calls
        }
    }

    private void refreshTargets() {
        List<String> now = new ArrayList<>();
        for (String t : configured) {
            if (t.startsWith("dns:") && !t.startsWith("dns:///")) {
                String hostPort = t.substring(4);
                int colon = hostPort.lastIndexOf(':');
                try {
                    for (InetAddress a : InetAddress.getAllByName(hostPort.substring(0, colon))) {
                        now.add(a.getHostAddress() + hostPort.substring(colon));
                    }
                } catch (UnknownHostException e) {
                    log.warn("{} replicas: cannot resolve {}", kind, hostPort);
                }
            } else {
                now.add(t);
            }
        }
        for (String t : now) {
            replicas.computeIfAbsent(t, target -> new Replica(target, channels.open(target)));
        }
        replicas.keySet().removeIf(t -> {
            if (!now.contains(t)) {
                Channels.close(replicas.get(t).channel);
                return true;
            }
            return false;
        });
    }

    @Override
    public void close() {
        health.shutdownNow();
        replicas.values().forEach(r -> Channels.close(r.channel));
    }
}
