package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * docs/configuration.md is the configuration reference: every {@code goldfinch.*} property of every service,
 * with the default its record's constructor applies and its environment variable. This test reads the
 * records themselves ({@link ConfigurationCatalog}), so a property added, renamed, removed or re-defaulted
 * in code without the doc following fails here.
 */
class ConfigurationReferenceTest {
    /** A table row: | `goldfinch.x.y` | `default` or — | `GOLDFINCH_X_Y` | meaning |. */
    private static final Pattern ROW =
            Pattern.compile("^\\| `(goldfinch\\.[a-z0-9.-]+)` \\| ([^|]+) \\| `([A-Z0-9_]+)` \\|.*");

    private static final Pattern MENTION = Pattern.compile("`(goldfinch(?:\\.[a-z0-9-]+)+)(\\.\\*)?`");

    record Documented(String defaultValue, String variable) {}

    static Map<String, Documented> documentedRows(List<String> lines) {
        Map<String, Documented> rows = new LinkedHashMap<>();
        for (String line : lines) {
            var m = ROW.matcher(line);
            if (m.matches()) {
                String value = m.group(2).trim();
                if (value.startsWith("`") && value.endsWith("`")) {
                    value = value.substring(1, value.length() - 1);
                }
                Documented d = new Documented(value, m.group(3));
                Documented before = rows.putIfAbsent(m.group(1), d);
                assertTrue(before == null || before.equals(d), m.group(1) + " is documented twice, differently");
            }
        }
        return rows;
    }

    /** Every problem found in the doc against the code; empty when they agree. */
    static List<String> problems(List<String> docLines, Map<String, Object> defaults) {
        Map<String, Documented> rows = documentedRows(docLines);
        List<String> problems = new ArrayList<>();
        for (var e : defaults.entrySet()) {
            Documented d = rows.get(e.getKey());
            if (d == null) {
                problems.add(e.getKey() + " is not documented");
                continue;
            }
            String expected = ConfigurationCatalog.format(e.getValue());
            if (!expected.equals(d.defaultValue())) {
                problems.add(e.getKey() + ": documented default " + d.defaultValue() + ", the code's is " + expected);
            }
            String variable = ConfigurationCatalog.environmentVariable(e.getKey());
            if (!variable.equals(d.variable())) {
                problems.add(e.getKey() + ": documented variable " + d.variable() + ", Spring binds " + variable);
            }
        }
        for (String documented : rows.keySet()) {
            if (!defaults.containsKey(documented)) {
                problems.add(documented + " is documented but no service reads it");
            }
        }
        // Prose may name a property or a group (`goldfinch.tls.mesh.*`); each must still exist.
        for (String line : docLines) {
            var m = MENTION.matcher(line);
            while (m.find()) {
                String name = m.group(1);
                boolean known = m.group(2) == null
                        ? defaults.containsKey(name)
                        : defaults.keySet().stream().anyMatch(p -> p.startsWith(name + "."));
                if (!known) {
                    problems.add("the doc mentions " + m.group() + ", which no service reads");
                }
            }
        }
        return problems;
    }

    static Path projectRoot() {
        return DockerComposeConfigTest.projectFile("pom.xml").toAbsolutePath().getParent();
    }

    @Test
    void everyConfigurationClassOfTheSourcesIsOnThisClassPath() {
        Set<String> scanned = new TreeSet<>();
        ConfigurationCatalog.propertiesClasses().forEach(c -> scanned.add(c.getName()));
        assertEquals(ConfigurationCatalog.declaredInSources(projectRoot()), scanned);
        assertTrue(scanned.size() >= 7, "the seven services' records at least: " + scanned);
    }

    @Test
    void theReferenceMatchesTheCode() throws Exception {
        List<String> doc = Files.readAllLines(projectRoot().resolve("docs/configuration.md"));
        List<String> problems = problems(doc, ConfigurationCatalog.defaults());
        assertTrue(problems.isEmpty(), "docs/configuration.md:\n  " + String.join("\n  ", problems));
    }

    /** The check bites: a dropped row, a changed default and a renamed property are each reported. */
    @Test
    void theCheckCatchesARemovedAChangedAndARenamedLine() throws Exception {
        List<String> doc = Files.readAllLines(projectRoot().resolve("docs/configuration.md"));
        Map<String, Object> defaults = ConfigurationCatalog.defaults();

        List<String> removed = new ArrayList<>(doc);
        removed.removeIf(l -> l.startsWith("| `goldfinch.decode.max-batch` |"));
        assertEquals(List.of("goldfinch.decode.max-batch is not documented"), problems(removed, defaults));

        List<String> changed = doc.stream()
                .map(l -> l.startsWith("| `goldfinch.cache.ttl` |") ? l.replace("| `1h` |", "| `2h` |") : l)
                .toList();
        assertEquals(
                List.of("goldfinch.cache.ttl: documented default 2h, the code's is 1h"), problems(changed, defaults));

        List<String> renamed = doc.stream()
                .map(l -> l.startsWith("| `goldfinch.prefill.write-queue` |")
                        ? l.replace("goldfinch.prefill.write-queue", "goldfinch.prefill.writer-queue")
                        : l)
                .toList();
        List<String> found = problems(renamed, defaults);
        assertTrue(
                found.contains("goldfinch.prefill.write-queue is not documented")
                        && found.contains("goldfinch.prefill.writer-queue is documented but no service reads it"),
                String.valueOf(found));
    }
}
