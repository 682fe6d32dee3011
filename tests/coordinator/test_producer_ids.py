from coordinator.producer_ids import BLOCK_SIZE, ProducerIdManager


def test_ids_are_consecutive_and_each_new_block_is_reported_once():
    manager = ProducerIdManager(persisted_block_end=0)
    first = manager.allocate()
    assert (first.producer_id, first.new_block_end) == (0, BLOCK_SIZE)
    rest = [manager.allocate() for _ in range(BLOCK_SIZE)]
    assert [a.producer_id for a in rest] == list(range(1, BLOCK_SIZE + 1))
    assert [a.new_block_end for a in rest if a.new_block_end is not None] == [2 * BLOCK_SIZE]
    assert rest[-1].new_block_end == 2 * BLOCK_SIZE


def test_a_restart_continues_after_the_persisted_block_and_never_reuses_an_id():
    manager = ProducerIdManager(persisted_block_end=BLOCK_SIZE)
    allocation = manager.allocate()
    assert (allocation.producer_id, allocation.new_block_end) == (BLOCK_SIZE, 2 * BLOCK_SIZE)
