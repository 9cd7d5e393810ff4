// Workload 10: application-shaped. Each round:
//  1. generates JSON-like text of 2000 records (names, tags, nested attributes),
//  2. parses it into a document tree (strings, vectors, objects),
//  3. re-serialises the tree to text,
//  4. indexes it: an unordered_map word -> count and a std::map tag -> ids,
//     queries both, erases half of the map,
//  5. drops everything.
// A realistic mix of string, vector, node and buffer sizes, all through
// operator new/delete (and so the preloaded allocator).
#include "common.h"

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

struct Value {
  enum Kind { Null, Num, Str, Arr, Obj } kind = Null;
  double num = 0;
  std::string str;
  std::vector<Value> arr;
  std::vector<std::pair<std::string, Value>> obj;
};

const char* kWords[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
                        "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
                        "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey",
                        "xray", "yankee", "zulu", "allocation", "span", "page", "cache"};
constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

std::string word(bench::Rng& r) {
  std::string w = kWords[r.below(kNumWords)];
  if (r.below(3) == 0) w += std::to_string(r.below(1000));
  if (r.below(8) == 0) {
    w += '_';
    w += kWords[r.below(kNumWords)];
  }
  return w;
}

std::string generate(bench::Rng& r, int records) {
  std::string s = "[";
  for (int i = 0; i < records; ++i) {
    if (i) s += ",\n";
    s += "{\"id\":" + std::to_string(i) + ",\"name\":\"" + word(r) + " " + word(r) + "\",\"score\":" +
         std::to_string(r.below(100000) / 100.0) + ",\"tags\":[";
    int nt = (int)r.below(8);
    for (int t = 0; t < nt; ++t) s += (t ? ",\"" : "\"") + word(r) + "\"";
    s += "],\"attrs\":{";
    int na = (int)r.below(6);
    for (int k = 0; k < na; ++k) {
      s += (k ? ",\"" : "\"") + word(r) + "\":";
      if (r.below(2))
        s += "\"" + std::string(r.range(1, 120), 'a' + (char)r.below(26)) + "\"";
      else
        s += "[" + std::to_string(r.below(1 << 20)) + "," + std::to_string(r.below(99)) + "]";
    }
    s += "}}";
  }
  s += "]";
  return s;
}

struct Parser {
  const char* p;
  void ws() {
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') ++p;
  }
  std::string string() {
    std::string out;
    ++p;  // opening quote
    while (*p != '"') {
      if (*p == '\\') ++p;
      out += *p++;
    }
    ++p;
    return out;
  }
  Value value() {
    ws();
    Value v;
    if (*p == '"') {
      v.kind = Value::Str;
      v.str = string();
    } else if (*p == '[') {
      v.kind = Value::Arr;
      ++p;
      ws();
      while (*p != ']') {
        v.arr.push_back(value());
        ws();
        if (*p == ',') ++p;
        ws();
      }
      ++p;
    } else if (*p == '{') {
      v.kind = Value::Obj;
      ++p;
      ws();
      while (*p != '}') {
        ws();
        std::string k = string();
        ws();
        ++p;  // ':'
        v.obj.emplace_back(std::move(k), value());
        ws();
        if (*p == ',') ++p;
        ws();
      }
      ++p;
    } else {
      char* end;
      v.kind = Value::Num;
      v.num = std::strtod(p, &end);
      p = end;
    }
    return v;
  }
};

void serialise(const Value& v, std::string& out) {
  switch (v.kind) {
    case Value::Null: out += "null"; break;
    case Value::Num: {
      char b[32];
      std::snprintf(b, sizeof b, "%g", v.num);
      out += b;
      break;
    }
    case Value::Str: out += '"'; out += v.str; out += '"'; break;
    case Value::Arr:
      out += '[';
      for (size_t i = 0; i < v.arr.size(); ++i) {
        if (i) out += ',';
        serialise(v.arr[i], out);
      }
      out += ']';
      break;
    case Value::Obj:
      out += '{';
      for (size_t i = 0; i < v.obj.size(); ++i) {
        if (i) out += ',';
        out += '"';
        out += v.obj[i].first;
        out += "\":";
        serialise(v.obj[i].second, out);
      }
      out += '}';
      break;
  }
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv);
  bench::Rng rng(a.seed);
  const uint64_t rounds = bench::scaled(60, a.scale);
  constexpr int kRecords = 2000;
  uint64_t sum = 0, bytes = 0;
  bench::Timer t;
  for (uint64_t round = 0; round < rounds; ++round) {
    std::string text = generate(rng, kRecords);
    Parser ps{text.c_str()};
    Value doc = ps.value();
    std::string out;
    serialise(doc, out);
    bytes += text.size() + out.size();
    std::unordered_map<std::string, uint64_t> words;
    std::map<std::string, std::vector<int>> by_tag;
    for (const Value& rec : doc.arr) {
      int id = 0;
      for (const auto& [k, v] : rec.obj) {
        if (k == "id") id = (int)v.num;
        else if (k == "name") {
          size_t start = 0;
          while (start < v.str.size()) {
            size_t sp = v.str.find(' ', start);
            if (sp == std::string::npos) sp = v.str.size();
            ++words[v.str.substr(start, sp - start)];
            start = sp + 1;
          }
        } else if (k == "tags") {
          for (const Value& tag : v.arr) {
            by_tag[tag.str].push_back(id);
            ++words[tag.str];
          }
        } else if (k == "attrs") {
          for (const auto& [ak, av] : v.obj) words[ak] += av.kind == Value::Str ? av.str.size() : 1;
        }
      }
    }
    for (int q = 0; q < 20000; ++q) {
      std::string key = word(rng);
      auto it = words.find(key);
      if (it != words.end()) sum += it->second;
      auto jt = by_tag.lower_bound(key);
      if (jt != by_tag.end()) sum += jt->second.size();
    }
    int i = 0;
    for (auto it = by_tag.begin(); it != by_tag.end();) {
      if (i++ % 2) it = by_tag.erase(it);
      else ++it;
    }
    sum += words.size() + by_tag.size() + out.size();
  }
  bench::Result res;
  res.workload = "app";
  res.unit = "JSON records parsed and indexed";
  res.scale = a.scale;
  res.seconds = t.seconds();
  res.ops = rounds * kRecords;
  res.checksum = sum;
  res.extra = {{"text_mib", bytes / 1048576.0}};
  bench::report(res);
}
