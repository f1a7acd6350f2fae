// A small supabase-js program type-checked (tsc --strict) against the types `sluice gen types
// typescript` prints for schema.sql: tests/cli_gen_types.rs writes them to database.types.ts
// beside this file. Every `@ts-expect-error` must meet an error, so the types are not `any`.
import { createClient } from "@supabase/supabase-js"
import type {
  CompositeTypes,
  Database,
  Enums,
  Tables,
  TablesInsert,
  TablesUpdate,
} from "./database.types"

const supabase = createClient<Database>("http://127.0.0.1:54321", "anon-key")

export async function main(): Promise<void> {
  const { data: users } = await supabase
    .from("users")
    .select("id, name, mood, tags, data, home, status")
  if (users) {
    const id: number = users[0].id
    const name: string = users[0].name
    const mood: "happy" | "sad" | "in-between" = users[0].mood
    const tags: string[] = users[0].tags
    const city: string | null | undefined = users[0].home?.city
    // @ts-expect-error a nullable enum is not a string
    const status: string = users[0].status
    console.log(id, name, mood, tags, city, status)
  }

  const { data: posts } = await supabase
    .from("posts")
    .select("id, title, author:users!posts_author_id_fkey(name), post_tags(tag)")
  if (posts) {
    const author: string = posts[0].author.name
    const tags: string[] = posts[0].post_tags.map((t) => t.tag)
    console.log(author, tags)
  }

  // profiles.user_id is the primary key: one profile per user, an object, not an array.
  const { data: user } = await supabase.from("users").select("name, profiles(bio)").single()
  if (user?.profiles) {
    const bio: string | null = user.profiles.bio
    console.log(bio)
  }

  const row: TablesInsert<"users"> = { name: "ada", email: "ada@example.com" }
  // @ts-expect-error `id` is generated always: it cannot be written
  const withId: TablesInsert<"users"> = { name: "ada", email: "ada@example.com", id: 1 }
  // @ts-expect-error `name` is required
  const withoutName: TablesInsert<"users"> = { email: "ada@example.com" }
  const change: TablesUpdate<"posts"> = { title: "new" }
  await supabase.from("users").insert(row)
  // @ts-expect-error no such column
  await supabase.from("users").insert({ name: "n", email: "e", nope: 1 })
  await supabase.from("posts").update(change).eq("id", 1)
  console.log(withId, withoutName)

  // An updatable view takes inserts; its Row is all nullable.
  await supabase.from("published_posts").insert({ title: "t", author_id: 1 })
  const { data: published } = await supabase.from("published_posts").select("*")
  const title: string | null | undefined = published?.[0].title

  const { data: sum } = await supabase.rpc("add", { a: 1, b: 2 })
  const total: number | null = sum
  const { data: found } = await supabase.rpc("search_posts", { q: "x" })
  const titles: string[] | undefined = found?.map((p) => p.title)
  const { data: rows } = await supabase.rpc("author_posts", { author: 1 })
  const moods = rows?.map((r) => r.mood)
  // @ts-expect-error `add` takes numbers
  await supabase.rpc("add", { a: "1", b: 2 })
  console.log(title, total, titles, moods)

  const mood: Enums<"mood"> = "happy"
  // @ts-expect-error not a label of the enum
  const notAMood: Enums<"mood"> = "angry"
  const address: CompositeTypes<"address"> = { street: null, city: "Oslo", zip: null, tags: [] }
  const post: Tables<"posts"> | null = null
  const { data: notes } = await supabase.schema("other").from("notes").select("id, mood")
  const noteMood: "calm" | "stormy" | null | undefined = notes?.[0].mood
  console.log(mood, notAMood, address, post, noteMood)
}
