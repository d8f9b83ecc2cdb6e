package dev.goldfinch.model.constrain;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.constrain.ByteNfa.Fragment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

/**
 * Compiles a JSON-Schema subset to a byte NFA whose language is compact JSON that validates against the schema.
 * Supported: {@code type} (one or a list), {@code enum}, {@code const}, {@code anyOf}, {@code $ref} to
 * {@code #/$defs/…} or {@code #/definitions/…} (not recursive), objects ({@code properties}, {@code required},
 * {@code additionalProperties}), strings ({@code minLength}, {@code maxLength}), integers (whole-number bounds,
 * exclusive or not), numbers (whole-number inclusive bounds), booleans, null, arrays ({@code items},
 * {@code minItems}, {@code maxItems}). Anything else that constrains a value fails with an
 * {@link GoldFinchException.InvalidInput} naming the keyword and where it is, so a client never gets free text
 * while believing it asked for a shape.
 *
 * <p>The emitted form: properties in schema order, no whitespace but an optional single space after {@code :} and
 * {@code ,}; numbers without exponent, at most {@value #MAX_DIGITS} digits before and after the point. A schema
 * without an explicit shape (e.g. {@code {"type":"object"}}) allows any JSON there, nested at most
 * {@value #ANY_DEPTH} deep.
 */
final class JsonSchemaCompiler {
    static final int MAX_DIGITS = 15;
    static final int ANY_DEPTH = 5;
    /** Unrolled bounds past these are refused: they would only bloat the automaton. */
    static final int MAX_LENGTH_BOUND = 4096;

    static final int MAX_ITEMS_BOUND = 256;
    private static final long MAX_MAGNITUDE = 999_999_999_999_999L;

    private static final Set<String> ANNOTATIONS = Set.of(
            "title",
            "description",
            "$schema",
            "$id",
            "$comment",
            "default",
            "examples",
            "deprecated",
            "readOnly",
            "writeOnly",
            "$defs",
            "definitions");
    private static final Set<String> TYPES =
            Set.of("object", "array", "string", "integer", "number", "boolean", "null");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final ByteNfa nfa;
    private final String field;
    private final JsonNode root;
    private final Deque<String> refs = new ArrayDeque<>();

    private JsonSchemaCompiler(ByteNfa nfa, String field, JsonNode root) {
        this.nfa = nfa;
        this.field = field;
        this.root = root;
    }

    /** The fragment accepting exactly the JSON texts this compiler emits for {@code schema}. */
    static Fragment compile(ByteNfa nfa, String field, JsonNode schema) {
        return new JsonSchemaCompiler(nfa, field, schema).schema(schema, "#");
    }

    private GoldFinchException.InvalidInput unsupported(String where, String what) {
        return new GoldFinchException.InvalidInput(field, "unsupported JSON Schema at " + where + ": " + what);
    }

    private Fragment schema(JsonNode s, String at) {
        if (s.isBoolean()) {
            if (s.booleanValue()) {
                return any(ANY_DEPTH);
            }
            throw unsupported(at, "the schema 'false' matches nothing");
        }
        if (!s.isObject()) {
            throw unsupported(at, "a schema must be an object or a boolean");
        }
        if (s.has("$ref")) {
            only(s, at, Set.of("$ref"));
            return ref(s.get("$ref"), at);
        }
        if (s.has("anyOf")) {
            only(s, at, Set.of("anyOf"));
            JsonNode options = s.get("anyOf");
            if (!options.isArray() || options.isEmpty()) {
                throw unsupported(at + "/anyOf", "anyOf must be a non-empty array");
            }
            List<Fragment> parts = new ArrayList<>();
            for (int i = 0; i < options.size(); i++) {
                parts.add(schema(options.get(i), at + "/anyOf/" + i));
            }
            return nfa.union(parts);
        }
        if (s.has("const")) {
            only(s, at, Set.of("const", "type"));
            return literal(s.get("const"));
        }
        if (s.has("enum")) {
            only(s, at, Set.of("enum", "type"));
            JsonNode values = s.get("enum");
            if (!values.isArray() || values.isEmpty()) {
                throw unsupported(at + "/enum", "enum must be a non-empty array");
            }
            List<Fragment> parts = new ArrayList<>();
            for (JsonNode v : values) {
                parts.add(literal(v));
            }
            return nfa.union(parts);
        }
        JsonNode type = s.get("type");
        if (type == null) {
            if (s.has("properties")) {
                return typed(s, "object", at);
            }
            only(s, at, Set.of());
            return any(ANY_DEPTH);
        }
        if (type.isArray()) {
            List<Fragment> parts = new ArrayList<>();
            for (JsonNode t : type) {
                parts.add(typed(s, typeName(t, at), at));
            }
            if (parts.isEmpty()) {
                throw unsupported(at + "/type", "type must not be an empty list");
            }
            return nfa.union(parts);
        }
        return typed(s, typeName(type, at), at);
    }

    private String typeName(JsonNode t, String at) {
        String name = t.isString() ? t.asString() : "";
        if (!TYPES.contains(name)) {
            throw unsupported(at + "/type", "unknown type " + t);
        }
        return name;
    }

    /** Fails on any keyword besides annotations and {@code allowed}. */
    private void only(JsonNode s, String at, Set<String> allowed) {
        for (Map.Entry<String, JsonNode> e : s.properties()) {
            String k = e.getKey();
            if (!ANNOTATIONS.contains(k) && !allowed.contains(k)) {
                throw unsupported(at, "keyword '" + k + "'" + (allowed.isEmpty() ? "" : " here"));
            }
        }
    }

    private Fragment typed(JsonNode s, String type, String at) {
        Set<String> multi = s.get("type") != null && s.get("type").isArray() ? allKeywordsOfTypes(s) : null;
        return switch (type) {
            case "string" -> {
                only(s, at, multi != null ? multi : Set.of("type", "minLength", "maxLength"));
                int min = bound(s, "minLength", at, 0, MAX_LENGTH_BOUND);
                int max = s.has("maxLength") ? bound(s, "maxLength", at, 0, MAX_LENGTH_BOUND) : -1;
                if (max >= 0 && max < min) {
                    throw unsupported(at, "maxLength is below minLength");
                }
                yield string(min, max);
            }
            case "integer" -> {
                only(
                        s,
                        at,
                        multi != null
                                ? multi
                                : Set.of(
                                        "type",
                                        "minimum",
                                        "maximum",
                                        "exclusiveMinimum",
                                        "exclusiveMaximum",
                                        "format"));
                long lo = s.has("minimum") ? whole(s, "minimum", at) : -MAX_MAGNITUDE;
                long hi = s.has("maximum") ? whole(s, "maximum", at) : MAX_MAGNITUDE;
                // Schema generators (Spring AI's, springdoc's) mark Java ints so: a range we can honour.
                String format = s.path("format").asString("");
                switch (format) {
                    case "int32" -> {
                        lo = Math.max(lo, Integer.MIN_VALUE);
                        hi = Math.min(hi, Integer.MAX_VALUE);
                    }
                    case "", "int64" -> {}
                    default -> throw unsupported(at, "integer format '" + format + "'");
                }
                if (s.has("exclusiveMinimum")) {
                    lo = Math.max(lo, whole(s, "exclusiveMinimum", at) + 1);
                }
                if (s.has("exclusiveMaximum")) {
                    hi = Math.min(hi, whole(s, "exclusiveMaximum", at) - 1);
                }
                if (lo > hi) {
                    throw unsupported(at, "no integer lies within the bounds");
                }
                yield integerRange(lo, hi);
            }
            case "number" -> {
                only(s, at, multi != null ? multi : Set.of("type", "minimum", "maximum"));
                if (multi != null && (s.has("exclusiveMinimum") || s.has("exclusiveMaximum"))) {
                    throw unsupported(at, "exclusiveMinimum/exclusiveMaximum on a number");
                }
                long lo = s.has("minimum") ? whole(s, "minimum", at) : -MAX_MAGNITUDE;
                long hi = s.has("maximum") ? whole(s, "maximum", at) : MAX_MAGNITUDE;
                if (lo > hi) {
                    throw unsupported(at, "minimum is above maximum");
                }
                yield number(lo, hi);
            }
            case "boolean" -> {
                only(s, at, multi != null ? multi : Set.of("type"));
                yield nfa.union(List.of(nfa.literal("true"), nfa.literal("false")));
            }
            case "null" -> {
                only(s, at, multi != null ? multi : Set.of("type"));
                yield nfa.literal("null");
            }
            case "array" -> {
                only(s, at, multi != null ? multi : Set.of("type", "items", "minItems", "maxItems"));
                yield array(s, at);
            }
            default -> {
                only(s, at, multi != null ? multi : Set.of("type", "properties", "required", "additionalProperties"));
                yield object(s, at);
            }
        };
    }

    /** With {@code "type": [..]}, each branch may see the keywords of the others. */
    private static Set<String> allKeywordsOfTypes(JsonNode s) {
        return Set.of(
                "type",
                "minLength",
                "maxLength",
                "minimum",
                "maximum",
                "exclusiveMinimum",
                "exclusiveMaximum",
                "items",
                "minItems",
                "maxItems",
                "properties",
                "required",
                "additionalProperties");
    }

    private int bound(JsonNode s, String key, String at, int dflt, int max) {
        JsonNode v = s.get(key);
        if (v == null) {
            return dflt;
        }
        if (!v.isIntegralNumber() || v.longValue() < 0) {
            throw unsupported(at + "/" + key, key + " must be a non-negative integer");
        }
        if (v.longValue() > max) {
            throw unsupported(at + "/" + key, key + " above " + max);
        }
        return v.intValue();
    }

    private long whole(JsonNode s, String key, String at) {
        JsonNode v = s.get(key);
        if (!v.isNumber()) {
            throw unsupported(at + "/" + key, key + " must be a number");
        }
        double d = v.doubleValue();
        if (d != Math.rint(d) || Math.abs(d) > MAX_MAGNITUDE) {
            throw unsupported(
                    at + "/" + key, key + " " + v + " (bounds must be whole numbers within ±" + MAX_MAGNITUDE + ")");
        }
        return (long) d;
    }

    private Fragment ref(JsonNode ref, String at) {
        String r = ref.isString() ? ref.asString() : "";
        String name;
        JsonNode target;
        if (r.startsWith("#/$defs/")) {
            name = r.substring("#/$defs/".length());
            target = root.path("$defs").get(name);
        } else if (r.startsWith("#/definitions/")) {
            name = r.substring("#/definitions/".length());
            target = root.path("definitions").get(name);
        } else if (r.equals("#")) {
            throw unsupported(at + "/$ref", "recursive $ref '#'");
        } else {
            throw unsupported(at + "/$ref", "$ref " + ref + " (only #/$defs/<name> and #/definitions/<name>)");
        }
        if (target == null) {
            throw unsupported(at + "/$ref", "$ref " + r + " names no definition");
        }
        if (refs.contains(r)) {
            throw unsupported(at + "/$ref", "recursive $ref " + r);
        }
        refs.push(r);
        try {
            return schema(target, r);
        } finally {
            refs.pop();
        }
    }

    private Fragment literal(JsonNode value) {
        return nfa.literal(JSON.writeValueAsString(value));
    }

    private Fragment space() {
        return nfa.optional(nfa.literal(" "));
    }

    // ---- objects and arrays ----

    private Fragment object(JsonNode s, String at) {
        JsonNode props = s.get("properties");
        JsonNode extra = s.get("additionalProperties");
        if (props == null || props.isEmpty()) {
            if (extra != null && extra.isBoolean() && !extra.booleanValue()) {
                return nfa.literal("{}");
            }
            if (extra != null && extra.isObject()) {
                return list("{", () -> member(string(0, -1), schema(extra, at + "/additionalProperties")), "}");
            }
            return anyObject(ANY_DEPTH);
        }
        if (!props.isObject()) {
            throw unsupported(at + "/properties", "properties must be an object");
        }
        Set<String> required = new HashSet<>();
        JsonNode req = s.get("required");
        if (req != null) {
            if (!req.isArray()) {
                throw unsupported(at + "/required", "required must be an array");
            }
            for (JsonNode r : req) {
                if (!r.isString() || !props.has(r.asString())) {
                    throw unsupported(at + "/required", "required names " + r + ", which is not in properties");
                }
                required.add(r.asString());
            }
        }
        // Two lanes: "no member written yet" (no comma before the next) and "some written" (a comma first).
        int start = nfa.state();
        int noneYet = nfa.state();
        int some = -1;
        Fragment open = nfa.literal("{");
        nfa.epsilon(start, open.start());
        nfa.epsilon(open.end(), noneYet);
        for (Map.Entry<String, JsonNode> p : props.properties()) {
            boolean optional = !required.contains(p.getKey());
            String where = at + "/properties/" + p.getKey();
            int nextNone = -1;
            int nextSome = nfa.state();
            if (noneYet >= 0) {
                Fragment m = member(nfa.literal(JSON.writeValueAsString(p.getKey())), schema(p.getValue(), where));
                nfa.epsilon(noneYet, m.start());
                nfa.epsilon(m.end(), nextSome);
                if (optional) {
                    nextNone = noneYet;
                }
            }
            if (some >= 0) {
                Fragment m = nfa.seq(
                        nfa.literal(","),
                        space(),
                        member(nfa.literal(JSON.writeValueAsString(p.getKey())), schema(p.getValue(), where)));
                nfa.epsilon(some, m.start());
                nfa.epsilon(m.end(), nextSome);
                if (optional) {
                    nfa.epsilon(some, nextSome);
                }
            }
            noneYet = nextNone;
            some = nextSome;
        }
        Fragment close = nfa.literal("}");
        if (noneYet >= 0) {
            nfa.epsilon(noneYet, close.start());
        }
        nfa.epsilon(some, close.start());
        return new Fragment(start, close.end());
    }

    private Fragment member(Fragment key, Fragment value) {
        return nfa.seq(key, nfa.literal(":"), space(), value);
    }

    /** {@code open (elem ("," elem)*)? close} with one copy of elem: the loop goes back into it. */
    private Fragment list(String open, java.util.function.Supplier<Fragment> element, String close) {
        Fragment o = nfa.literal(open);
        Fragment elem = element.get();
        Fragment c = nfa.literal(close);
        Fragment sep = nfa.seq(nfa.literal(","), space());
        nfa.epsilon(o.end(), elem.start());
        nfa.epsilon(o.end(), c.start());
        nfa.epsilon(elem.end(), c.start());
        nfa.epsilon(elem.end(), sep.start());
        nfa.epsilon(sep.end(), elem.start());
        return new Fragment(o.start(), c.end());
    }

    private Fragment array(JsonNode s, String at) {
        int min = bound(s, "minItems", at, 0, MAX_ITEMS_BOUND);
        int max = s.has("maxItems") ? bound(s, "maxItems", at, 0, MAX_ITEMS_BOUND) : -1;
        if (max >= 0 && max < min) {
            throw unsupported(at, "maxItems is below minItems");
        }
        JsonNode items = s.get("items");
        java.util.function.Supplier<Fragment> item =
                () -> items == null ? any(ANY_DEPTH - 1) : schema(items, at + "/items");
        if (min == 0 && max < 0) {
            return list("[", item, "]");
        }
        if (max == 0) {
            return nfa.literal("[]");
        }
        // item ("," item){min-1} then up to max-min more (or any number more)
        Fragment rest;
        if (max < 0) {
            rest = nfa.star(nfa.seq(nfa.literal(","), space(), item.get()));
        } else {
            rest = nfa.empty();
            for (int i = Math.max(min, 1); i < max; i++) {
                rest = nfa.optional(nfa.seq(nfa.literal(","), space(), item.get(), rest));
            }
        }
        List<Fragment> parts = new ArrayList<>();
        parts.add(item.get());
        for (int i = 1; i < min; i++) {
            parts.add(nfa.seq(nfa.literal(","), space(), item.get()));
        }
        parts.add(rest);
        Fragment body = nfa.seq(parts.toArray(Fragment[]::new));
        if (min == 0) {
            body = nfa.optional(body);
        }
        return nfa.seq(nfa.literal("["), body, nfa.literal("]"));
    }

    // ---- any JSON ----

    /** Any JSON value, objects and arrays nested at most {@code depth} deep. */
    Fragment any(int depth) {
        List<Fragment> parts = new ArrayList<>(List.of(
                string(0, -1),
                number(-MAX_MAGNITUDE, MAX_MAGNITUDE),
                nfa.literal("true"),
                nfa.literal("false"),
                nfa.literal("null")));
        if (depth > 0) {
            parts.add(anyObject(depth));
            parts.add(list("[", () -> any(depth - 1), "]"));
        }
        return nfa.union(parts);
    }

    private Fragment anyObject(int depth) {
        return list("{", () -> member(string(0, -1), any(depth - 1)), "}");
    }

    // ---- strings ----

    /** A JSON string of {@code min..max} characters (max < 0: unbounded). */
    Fragment string(int min, int max) {
        List<Fragment> parts = new ArrayList<>();
        parts.add(nfa.literal("\""));
        for (int i = 0; i < min; i++) {
            parts.add(character());
        }
        if (max < 0) {
            parts.add(nfa.star(character()));
        } else {
            // Nested optionals (c(c(c)?)?)? keep each automaton state's epsilon closure small.
            Fragment tail = nfa.empty();
            for (int i = min; i < max; i++) {
                tail = nfa.optional(nfa.seq(character(), tail));
            }
            parts.add(tail);
        }
        parts.add(nfa.literal("\""));
        return nfa.seq(parts.toArray(Fragment[]::new));
    }

    /** One character inside a JSON string: unescaped (well-formed UTF-8, no control) or an escape. */
    private Fragment character() {
        int s = nfa.state();
        int e = nfa.state();
        nfa.range(s, 0x20, 0x21, e);
        nfa.range(s, 0x23, 0x5b, e);
        nfa.range(s, 0x5d, 0x7f, e);
        // Multi-byte UTF-8, no overlongs or surrogates (RFC 3629's table).
        nfa.range(s, 0xc2, 0xdf, cont(1, e));
        int c2 = cont(1, e);
        int c3 = cont(2, e);
        nfa.range(s, 0xe0, 0xe0, bytes(0xa0, 0xbf, c2));
        nfa.range(s, 0xe1, 0xec, c3);
        nfa.range(s, 0xed, 0xed, bytes(0x80, 0x9f, c2));
        nfa.range(s, 0xee, 0xef, c3);
        nfa.range(s, 0xf0, 0xf0, bytes(0x90, 0xbf, c3));
        nfa.range(s, 0xf1, 0xf3, cont(3, e));
        nfa.range(s, 0xf4, 0xf4, bytes(0x80, 0x8f, c3));
        int esc = nfa.state();
        nfa.range(s, '\\', '\\', esc);
        for (char c : "\"\\/bfnrt".toCharArray()) {
            nfa.range(esc, c, c, e);
        }
        // \\uXXXX outside the surrogates
        int u = nfa.state();
        nfa.range(esc, 'u', 'u', u);
        int hex3 = hexes(3, e);
        int hex2low = hexes(2, e);
        for (int[] r : new int[][] {{'0', '9'}, {'a', 'c'}, {'A', 'C'}, {'e', 'f'}, {'E', 'F'}}) {
            nfa.range(u, r[0], r[1], hex3);
        }
        int d = nfa.state();
        nfa.range(u, 'd', 'd', d);
        nfa.range(u, 'D', 'D', d);
        nfa.range(d, '0', '7', hex2low);
        return new Fragment(s, e);
    }

    /** A state from which {@code n} continuation bytes lead to {@code to}. */
    private int cont(int n, int to) {
        int at = to;
        for (int i = 0; i < n; i++) {
            at = bytes(0x80, 0xbf, at);
        }
        return at;
    }

    private int bytes(int lo, int hi, int to) {
        int s = nfa.state();
        nfa.range(s, lo, hi, to);
        return s;
    }

    private int hexes(int n, int to) {
        int at = to;
        for (int i = 0; i < n; i++) {
            int s = nfa.state();
            nfa.range(s, '0', '9', at);
            nfa.range(s, 'a', 'f', at);
            nfa.range(s, 'A', 'F', at);
            at = s;
        }
        return at;
    }

    // ---- numbers ----

    /** Integers in [lo, hi], canonical decimal (no leading zeros, no "-0"). */
    Fragment integerRange(long lo, long hi) {
        List<Fragment> parts = new ArrayList<>();
        if (hi >= 0) {
            parts.add(naturals(Math.max(lo, 0), hi));
        }
        if (lo < 0) {
            parts.add(nfa.seq(nfa.literal("-"), naturals(Math.max(1, -hi), -lo)));
        }
        return nfa.union(parts);
    }

    /** Numbers in [lo, hi] (whole-number bounds): integers, and decimals where every fraction stays in range. */
    Fragment number(long lo, long hi) {
        List<Fragment> parts = new ArrayList<>();
        parts.add(integerRange(lo, hi));
        long a = Math.max(lo, 0);
        if (a <= hi - 1) {
            parts.add(nfa.seq(naturals(a, hi - 1), fraction()));
        }
        long b = Math.max(1, -hi);
        if (lo < 0 && b <= -lo - 1) {
            parts.add(nfa.seq(nfa.literal("-"), naturals(b, -lo - 1), fraction()));
        }
        if (lo <= -1 && hi >= 0) {
            parts.add(nfa.seq(nfa.literal("-0"), fraction()));
        }
        return nfa.union(parts);
    }

    private Fragment fraction() {
        Fragment tail = nfa.empty();
        for (int i = 1; i < MAX_DIGITS; i++) {
            tail = nfa.optional(nfa.seq(nfa.bytes('0', '9'), tail));
        }
        return nfa.seq(nfa.literal("."), nfa.bytes('0', '9'), tail);
    }

    private Fragment naturals(long a, long b) {
        List<Fragment> parts = new ArrayList<>();
        String sa = Long.toString(a);
        String sb = Long.toString(b);
        for (int len = sa.length(); len <= sb.length(); len++) {
            String x = len == sa.length() ? sa : "1" + "0".repeat(len - 1);
            String y = len == sb.length() ? sb : "9".repeat(len);
            parts.add(sameLength(x, y));
        }
        return nfa.union(parts);
    }

    /** Decimal strings of x's length between x and y (x <= y, same length). */
    private Fragment sameLength(String x, String y) {
        if (x.isEmpty()) {
            return nfa.empty();
        }
        char x0 = x.charAt(0);
        char y0 = y.charAt(0);
        String xr = x.substring(1);
        String yr = y.substring(1);
        if (x0 == y0) {
            return nfa.seq(nfa.bytes(x0, x0), sameLength(xr, yr));
        }
        if (xr.chars().allMatch(c -> c == '0') && yr.chars().allMatch(c -> c == '9')) {
            return nfa.seq(nfa.bytes(x0, y0), digits(xr.length()));
        }
        List<Fragment> parts = new ArrayList<>();
        parts.add(nfa.seq(nfa.bytes(x0, x0), sameLength(xr, "9".repeat(xr.length()))));
        if (x0 + 1 <= y0 - 1) {
            parts.add(nfa.seq(nfa.bytes(x0 + 1, y0 - 1), digits(xr.length())));
        }
        parts.add(nfa.seq(nfa.bytes(y0, y0), sameLength("0".repeat(yr.length()), yr)));
        return nfa.union(parts);
    }

    private Fragment digits(int n) {
        Fragment[] d = new Fragment[n];
        for (int i = 0; i < n; i++) {
            d[i] = nfa.bytes('0', '9');
        }
        return nfa.seq(d);
    }
}
