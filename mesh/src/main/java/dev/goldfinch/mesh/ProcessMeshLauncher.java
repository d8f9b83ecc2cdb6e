package dev.goldfinch.mesh;

import dev.goldfinch.service.tls.MeshCertificates;
import io.grpc.ChannelCredentials;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The mesh as real processes: the services of {@link MeshPlan} each in a child JVM (the same java binary
 * and class path as this one), talking gRPC over loopback. Each child's output goes to {@code NAME.log} in
 * the log directory. Children stop when {@link #close} is called or this JVM ends, however it ends: each
 * watches its standard input, which is this process's pipe (see {@link ServiceProcess}).
 */
public final class ProcessMeshLauncher implements AutoCloseable {
    /** One running service. */
    public record Child(MeshPlan.Service service, Process process, Path log) {
        public String name() {
            return service.name();
        }

        public long pid() {
            return process.pid();
        }

        /** The line {@code serve --separate-processes} prints for it. */
        public String describe() {
            return "service " + name() + " pid " + pid() + " grpc " + service.grpcPort() + " http "
                    + service.httpPort();
        }
    }

    /** What the children's JVMs need beyond the class path (as the Docker image runs them). */
    static final List<String> JVM_OPTIONS = List.of(
            "--add-modules=jdk.incubator.vector",
            "--enable-native-access=ALL-UNNAMED",
            "--sun-misc-unsafe-memory-access=allow",
            "-Xss4m");

    private final Map<String, Child> children = new LinkedHashMap<>();
    // The children read their certificates at start; the files go when this launcher closes.
    private final MeshCertificates certificates = MeshCertificates.create("goldfinch-mesh-ca");
    /** The launcher's own certificate (health checks after a start or restart): issued once, its files exist. */
    private final ChannelCredentials launcher = certificates.issue("launcher").channelCredentials();

    private final Path logDir;

    private ProcessMeshLauncher(Path logDir) {
        this.logDir = logDir;
    }

    /**
     * Starts every service of {@code o} and waits until each answers gRPC health SERVING. Free ports are picked
     * before the children bind them and another process may take one meanwhile: a start that failed so is
     * tried again with new ports, at most three times.
     */
    public static ProcessMeshLauncher start(MeshLauncher.Options o, Path logDir) {
        for (int attempt = 1; ; attempt++) {
            try {
                // A retry keeps its own logs beside the failed attempt's.
                return startOnce(o, attempt == 1 ? logDir : logDir.resolve("retry-" + attempt));
            } catch (PortTaken e) {
                if (attempt >= 3) {
                    throw e;
                }
            }
        }
    }

    /** A child exited because a port picked for it was taken before it bound it. */
    private static final class PortTaken extends IllegalStateException {
        PortTaken(String message) {
            super(message);
        }
    }

    private static ProcessMeshLauncher startOnce(MeshLauncher.Options o, Path logDir) {
        ProcessMeshLauncher mesh = new ProcessMeshLauncher(logDir);
        try {
            Files.createDirectories(logDir);
            List<MeshPlan.Service> services = MeshPlan.of(o, mesh.certificates);
            for (MeshPlan.Service s : services) {
                mesh.spawn(s);
            }
            // Generous: a loaded machine starting several JVMs at once takes minutes, not seconds.
            MeshPlan.awaitServing(services, Duration.ofMinutes(10), mesh.launcher, mesh::stillStarting);
            return mesh;
        } catch (IOException e) {
            mesh.close();
            throw new UncheckedIOException(e);
        } catch (PortTaken e) {
            mesh.close();
            throw e;
        } catch (RuntimeException e) {
            IllegalStateException explained = new IllegalStateException(e.getMessage() + mesh.whyNotServing(), e);
            mesh.close();
            throw explained;
        }
    }

    /** Throws when {@code service}'s process has exited: it will not come up, so waiting longer is pointless. */
    private void stillStarting(MeshPlan.Service service) {
        Child c = children.get(service.name());
        if (c == null || c.process().isAlive()) {
            return;
        }
        String message = service.name() + " exited with " + c.process().exitValue() + " before serving";
        try {
            if (Files.readString(c.log()).contains(MeshLauncher.ADDRESS_IN_USE)) {
                throw new PortTaken(message + ": a port picked for it was taken");
            }
        } catch (IOException e) {
            // no log to read: report the exit as it is
        }
        throw new IllegalStateException(message);
    }

    /**
     * What each child was doing when the mesh failed to start: its exit code or a thread dump (written beside
     * its log), and the end of its log — so a start that timed out on a loaded machine says where it stood.
     */
    private String whyNotServing() {
        StringBuilder why = new StringBuilder();
        for (Child c : children.values()) {
            why.append("\n  ").append(c.name()).append(": ");
            if (c.process().isAlive()) {
                Path dump = logDir.resolve(c.name() + ".threads.txt");
                try {
                    new ProcessBuilder(
                                    Path.of(System.getProperty("java.home"), "bin", "jcmd")
                                            .toString(),
                                    Long.toString(c.pid()),
                                    "Thread.print")
                            .redirectErrorStream(true)
                            .redirectOutput(dump.toFile())
                            .start()
                            .waitFor(30, TimeUnit.SECONDS);
                    why.append("alive, threads in ").append(dump);
                } catch (IOException e) {
                    why.append("alive (no jcmd for a thread dump: ")
                            .append(e.getMessage())
                            .append(')');
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    why.append("alive");
                }
            } else {
                why.append("exited with ").append(c.process().exitValue());
            }
            try {
                List<String> lines = Files.readAllLines(c.log());
                why.append("; log ends:");
                lines.subList(Math.max(0, lines.size() - 5), lines.size())
                        .forEach(l -> why.append("\n    ").append(l));
            } catch (IOException e) {
                why.append("; no log: ").append(e.getMessage());
            }
        }
        return why.toString();
    }

    private void spawn(MeshPlan.Service service) throws IOException {
        String java = ProcessHandle.current()
                .info()
                .command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        List<String> command = new ArrayList<>();
        command.add(java);
        command.addAll(JVM_OPTIONS);
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(ServiceProcess.class.getName());
        command.add(service.app().getName());
        command.add(service.profile());
        Path log = logDir.resolve(service.name() + ".log");
        Process process = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())) // a restart appends
                .start();
        children.put(service.name(), new Child(service, process, log));
        OutputStream stdin = process.getOutputStream();
        ServiceProcess.writeProperties(service.properties(), stdin); // and left open: its end stops the child
    }

    /**
     * Starts {@code name} again, with the same ports and properties, once its process has ended (after a
     * SIGTERM, a {@code kill -9} …), and waits until it answers gRPC health SERVING. Peers reach it at the
     * address they had: the gateway's next health round finds it back.
     */
    public Child restart(String name, Duration timeout) {
        Child old = child(name);
        try {
            if (!old.process().waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                throw new IllegalStateException(name + " (pid " + old.pid() + ") has not exited: cannot restart it");
            }
            spawn(old.service());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
        MeshPlan.awaitServing(List.of(old.service()), timeout, launcher);
        return child(name);
    }

    public List<Child> children() {
        return List.copyOf(children.values());
    }

    public Child child(String name) {
        Child c = children.get(name);
        if (c == null) {
            throw new IllegalArgumentException("no service " + name + " in this mesh");
        }
        return c;
    }

    public int grpcPort(String service) {
        return child(service).service().grpcPort();
    }

    public int httpPort(String service) {
        return child(service).service().httpPort();
    }

    public Path logDir() {
        return logDir;
    }

    /** Stops every child, the gateway first: closes its standard input, then destroys what is left after a grace period. */
    @Override
    public void close() {
        List<Child> reversed = new ArrayList<>(children.values()).reversed();
        for (Child c : reversed) {
            try {
                c.process().getOutputStream().close();
            } catch (IOException e) {
                c.process().destroy();
            }
        }
        for (Child c : reversed) {
            try {
                if (!c.process().waitFor(10, TimeUnit.SECONDS)) {
                    c.process().destroyForcibly().waitFor(5, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                c.process().destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
        children.clear();
        certificates.close();
    }
}
