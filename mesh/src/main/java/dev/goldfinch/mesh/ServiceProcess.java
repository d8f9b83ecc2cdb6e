package dev.goldfinch.mesh;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.springframework.boot.builder.SpringApplicationBuilder;

/**
 * The main class of one service started by {@link ProcessMeshLauncher}: {@code APP_CLASS PROFILE}. Its
 * properties come on standard input (secrets such as the mesh signing key stay out of the command line,
 * which any local user can list); standard input then stays open, and its end — the parent exited, however
 * it exited, even {@code kill -9} — stops the service.
 */
public final class ServiceProcess {
    private ServiceProcess() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            throw new IllegalArgumentException("usage: ServiceProcess APP_CLASS PROFILE (properties on stdin)");
        }
        Class<?> app = Class.forName(args[0]);
        InputStream in = System.in;
        Map<String, String> properties = readProperties(in);
        Thread.ofPlatform().name("parent-watchdog").daemon().start(() -> {
            try {
                while (in.read() >= 0) {
                    // nothing else is sent: wait for the end
                }
            } catch (IOException e) {
                // the pipe broke: the parent is gone as well
            }
            System.exit(0); // Spring's shutdown hook closes the context
        });
        List<String> springArgs = new ArrayList<>();
        properties.forEach((k, v) -> springArgs.add("--" + k + "=" + v));
        long start = System.nanoTime();
        new SpringApplicationBuilder(app).main(app).profiles(args[1]).run(springArgs.toArray(String[]::new));
        // Whatever the log level: when a service came up is what a slow or failed mesh start is judged by.
        System.out.printf("%s started in %d ms%n", app.getSimpleName(), (System.nanoTime() - start) / 1_000_000);
    }

    /** Writes what {@link #readProperties} reads: a count, then each key and value. */
    static void writeProperties(Map<String, String> properties, OutputStream out) throws IOException {
        DataOutputStream data = new DataOutputStream(out);
        data.writeInt(properties.size());
        for (Map.Entry<String, String> e : properties.entrySet()) {
            data.writeUTF(e.getKey());
            data.writeUTF(e.getValue());
        }
        data.flush();
    }

    static Map<String, String> readProperties(InputStream in) throws IOException {
        DataInputStream data = new DataInputStream(in);
        int n = data.readInt();
        Map<String, String> properties = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
            properties.put(data.readUTF(), data.readUTF());
        }
        return properties;
    }
}
