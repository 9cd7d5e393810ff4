// Unit tests of douser's pure parts: option parsing, user-name checks, the
// environment allow-list, log escaping and password-hash classification.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "audit.h"
#include "auth.h"
#include "environment.h"
#include "options.h"

using namespace douser;

TEST(Options, DefaultsToRootAndStopsAtTheCommand) {
  Options o = parse_options({"id", "-u", "x"});
  EXPECT_EQ(o.user, "root");
  EXPECT_EQ(o.command, (std::vector<std::string>{"id", "-u", "x"}));
  Options u = parse_options({"-u", "bob", "--", "-weird", "arg"});
  EXPECT_EQ(u.user, "bob");
  EXPECT_EQ(u.command, (std::vector<std::string>{"-weird", "arg"}));
  EXPECT_EQ(parse_options({"-ubob", "ls"}).user, "bob");
  EXPECT_EQ(parse_options({"--user=bob", "ls"}).user, "bob");
  EXPECT_TRUE(parse_options({"--help"}).help);
}

TEST(Options, RefusesEmptyCommandsAndUnknownOptions) {
  EXPECT_THROW(parse_options({}), toolkit::UsageError);
  EXPECT_THROW(parse_options({"-u", "bob"}), toolkit::UsageError);
  EXPECT_THROW(parse_options({"--"}), toolkit::UsageError);
  EXPECT_THROW(parse_options({"-u"}), toolkit::UsageError);
  EXPECT_THROW(parse_options({"-x", "ls"}), toolkit::UsageError);
  EXPECT_THROW(parse_options({"--", ""}), toolkit::UsageError);
}

TEST(Options, UserNames) {
  for (const char *ok : {"root", "bob", "www-data", "a.b_c", "user$"}) EXPECT_TRUE(plausible_user_name(ok)) << ok;
  for (const char *bad :
       {"", "-x", "../etc", "a/b", "a:b", "a,b", "a b", "tab\t", "\x1b[31m", "0123456789012345678901234567890123"})
    EXPECT_FALSE(plausible_user_name(bad)) << bad;
}

TEST(Environment, OnlyTheAllowListPasses) {
  for (const char *ok : {"TERM=xterm-256color", "LANG=C.UTF-8", "LC_ALL=en_US.UTF-8", "LANGUAGE=en",
                         "COLORTERM=truecolor", "TZ=UTC", "TZ=Europe/Paris"})
    EXPECT_TRUE(allowed_from_caller(ok)) << ok;
  for (const char *bad : {"LD_PRELOAD=/tmp/x.so",
                          "LD_LIBRARY_PATH=/tmp",
                          "PATH=/tmp",
                          "IFS= ",
                          "BASH_ENV=/tmp/x",
                          "ENV=/tmp/x",
                          "BASH_FUNC_ls%%=() { :; }",
                          "PYTHONPATH=/tmp",
                          "HOME=/tmp",
                          "SHELL=/tmp/sh",
                          "LC_ALL=../../x",
                          "LANG=/tmp/locale",
                          "TERM=../../x",
                          "TERM=() { :; }",
                          "TZ=/etc/shadow",
                          "TZ=:/etc/shadow",
                          "TZ=../../../etc/shadow",
                          "LC_=x",
                          "lc_all=C",
                          "TERM=a\nb",
                          "NOEQUALS",
                          "=x",
                          "LC_ALL=%n%n"})
    EXPECT_FALSE(allowed_from_caller(bad)) << bad;
  EXPECT_FALSE(allowed_from_caller("TERM=" + std::string(300, 'x')));
  // LC_ categories by name only: 50,000 made-up LC_ variables stay behind.
  for (const char *bad : {"LC_EVIL=C", "LC_X1=C", "LC_ALLX=C"}) EXPECT_FALSE(allowed_from_caller(bad)) << bad;
  std::vector<std::string> many;
  for (int i = 0; i < 50000; ++i) {
    std::string name = "LC_X";  // made-up categories only (not LC_ALL...)
    for (int k = i; k; k /= 26) name += static_cast<char>('A' + k % 26);
    many.push_back(name + "=C");
  }
  Target t{"bob", 1001, 1001, "/home/bob", "/bin/sh"};
  EXPECT_EQ(build_environment(many, t, "alice", 1000).size(), 7u);
}

TEST(Environment, BuildsTargetVariablesAndDropsTheRest) {
  Target t{"bob", 1001, 1001, "/home/bob", "/bin/bash"};
  auto env = build_environment({"LD_PRELOAD=/x.so", "TERM=xterm", "PATH=/evil", "HOME=/evil", "TERM=vt100", "USER=eve"},
                               t, "alice", 1000);
  auto has = [&](const std::string &e) { return std::find(env.begin(), env.end(), e) != env.end(); };
  EXPECT_TRUE(has("TERM=xterm"));
  EXPECT_FALSE(has("TERM=vt100"));  // first one wins, no duplicates
  EXPECT_TRUE(has("HOME=/home/bob"));
  EXPECT_TRUE(has("USER=bob"));
  EXPECT_TRUE(has("LOGNAME=bob"));
  EXPECT_TRUE(has("SHELL=/bin/bash"));
  EXPECT_TRUE(has(std::string("PATH=") + kSecurePath));
  EXPECT_TRUE(has("DOUSER_USER=alice"));
  EXPECT_TRUE(has("DOUSER_UID=1000"));
  for (const auto &e : env) {
    EXPECT_EQ(e.find("evil"), std::string::npos) << e;
    EXPECT_NE(e.rfind("LD_", 0), 0u) << e;
  }
  EXPECT_EQ(env.size(), 8u);
  Target noshell{"x", 5, 5, "", ""};
  auto e2 = build_environment({}, noshell, "root", 0);
  EXPECT_NE(std::find(e2.begin(), e2.end(), "SHELL=/bin/sh"), e2.end());
  EXPECT_NE(std::find(e2.begin(), e2.end(), "HOME=/"), e2.end());
}

TEST(Audit, EscapesControlCharactersAndTruncates) {
  EXPECT_EQ(log_escape("plain text"), "plain text");
  EXPECT_EQ(log_escape("a\nb"), "a\\nb");
  EXPECT_EQ(log_escape("\x1b[31m"), "\\x1b[31m");
  EXPECT_EQ(log_escape("back\\slash"), "back\\\\slash");
  EXPECT_EQ(log_escape(std::string(10, 'x'), 4), "xxxx...");
  EXPECT_EQ(log_command({"echo", "two words", "line\nbreak"}), "echo two words line\\nbreak");
  EXPECT_LE(log_command(std::vector<std::string>(500, "abcdef")).size(), 1024u + 3);
  // A huge argument is cut, and a newline in it cannot start a new line.
  std::string huge(200000, 'x');
  huge[10] = '\n';
  std::string line = log_command({"echo", huge, huge});
  EXPECT_LE(line.size(), 4 * 1024u + 3);  // cut at 1024 bytes of input; an escape is at most 4 bytes
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(Auth, ClassifiesShadowHashes) {
  EXPECT_EQ(classify_hash(""), PasswordState::empty);
  EXPECT_EQ(classify_hash("!"), PasswordState::locked);
  EXPECT_EQ(classify_hash("!!"), PasswordState::locked);
  EXPECT_EQ(classify_hash("*"), PasswordState::locked);
  EXPECT_EQ(classify_hash("!$y$j9T$abc$def"), PasswordState::locked);
  EXPECT_EQ(classify_hash("$y$j9T$abc$def"), PasswordState::usable);
  EXPECT_EQ(password_state("no-such-user-douser-unit"), PasswordState::no_shadow_entry);
}
