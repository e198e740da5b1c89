// Intrusive doubly linked list: the element embeds its ListNode, so linking
// never allocates and unlinking is O(1) from the element alone.
#pragma once

#include <cstddef>
#include <cstdint>

#include "egw/assert.h"

namespace egw {

struct ListNode {
  ListNode* prev = nullptr;
  ListNode* next = nullptr;
  bool linked() const { return next != nullptr; }
  // Removes this node from whatever list holds it; no-op when unlinked.
  void unlink() {
    if (!next) return;
    prev->next = next;
    next->prev = prev;
    prev = next = nullptr;
  }
  ListNode() = default;
  ListNode(const ListNode&) = delete;
  ListNode& operator=(const ListNode&) = delete;
  ~ListNode() { unlink(); }
};

// A list of T linked through the member `Node`. The list does not own its
// elements; an element destroyed while linked unlinks itself.
template <class T, ListNode T::*Node>
class IntrusiveList {
 public:
  IntrusiveList() { head_.prev = head_.next = &head_; }
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;
  ~IntrusiveList() { clear(); }

  bool empty() const { return head_.next == &head_; }
  size_t size() const {
    size_t n = 0;
    for (auto* p = head_.next; p != &head_; p = p->next)
      ++n;
    return n;
  }

  void push_back(T& item) { insert_before(&head_, item); }
  void push_front(T& item) { insert_before(head_.next, item); }
  T* front() { return empty() ? nullptr : owner(head_.next); }
  T* back() { return empty() ? nullptr : owner(head_.prev); }
  // The element before `item` (linked here), or null at the front.
  T* prev(T& item) {
    ListNode* p = (item.*Node).prev;
    return p == &head_ ? nullptr : owner(p);
  }
  T* pop_front() {
    if (empty()) return nullptr;
    ListNode* n = head_.next;
    n->unlink();
    return owner(n);
  }
  static void erase(T& item) { (item.*Node).unlink(); }
  void clear() {
    while (!empty())
      head_.next->unlink();
  }
  // Moves every element of `other` to the back of this list.
  void splice_back(IntrusiveList& other) {
    if (other.empty()) return;
    ListNode* first = other.head_.next;
    ListNode* last = other.head_.prev;
    other.head_.prev = other.head_.next = &other.head_;
    last->next = &head_;
    first->prev = head_.prev;
    head_.prev->next = first;
    head_.prev = last;
  }

  // Iteration tolerates unlinking the current element only when the caller
  // advances first; use pop_front() loops for destructive walks.
  template <class F>
  void for_each(F&& f) {
    for (ListNode* n = head_.next; n != &head_;) {
      ListNode* next = n->next;
      f(*owner(n));
      n = next;
    }
  }

 private:
  static T* owner(ListNode* n) {
    // offsetof for a member pointer, computed from a dummy aligned address
    // (not null, which the sanitizers rightly reject).
    constexpr uintptr_t kBase = 0x1000;
    const auto offset = reinterpret_cast<uintptr_t>(&(reinterpret_cast<T*>(kBase)->*Node)) - kBase;
    return reinterpret_cast<T*>(reinterpret_cast<char*>(n) - offset);
  }
  void insert_before(ListNode* pos, T& item) {
    ListNode* n = &(item.*Node);
    EGW_ASSERT(!n->linked());
    n->next = pos;
    n->prev = pos->prev;
    pos->prev->next = n;
    pos->prev = n;
  }

  ListNode head_;
};

}  // namespace egw
